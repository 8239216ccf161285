package serve

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzJSONLines: any body either parses into one text per line, each the
// string its line holds, or is refused with a 400; never a panic.
func FuzzJSONLines(f *testing.F) {
	for _, s := range []string{"\"a\"\n{\"text\": \"b\"}\n", "\"a\"\r\n\"b\"", "\n", "{\"text\": null}", "\"\\ud800\"", "[1]\n", "\"a\"\n\n\"b\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		texts, aerr := parseJSONLines(body)
		if aerr != nil {
			if st := asError(aerr).Kind.Status(); st != 400 {
				t.Fatalf("status %d for %q", st, body)
			}
			return
		}
		lines := bytes.Split(bytes.TrimRight(body, "\r\n"), []byte("\n"))
		if len(texts) != len(lines) {
			t.Fatalf("%d texts from %d lines: %q", len(texts), len(lines), body)
		}
		for i, line := range lines {
			var s string
			if json.Unmarshal(bytes.TrimSpace(line), &s) == nil && s != texts[i] {
				t.Fatalf("line %d: %q, want %q", i+1, texts[i], s)
			}
		}
	})
}
