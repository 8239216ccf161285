package hf

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzTokenize(f *testing.F) {
	tok := testTokenizer(f)
	for _, l := range readTokGolden(f) {
		if len(l.Text) < 2000 {
			f.Add(l.Text, 256)
		}
	}
	for _, s := range []string{
		"", "[MASK]", "[MASK", "a[SEP]b[CLS]", "\xff", "ok\xe4\xb8", "\xed\xa0\x80",
		"e\u0301\u0327\u0301", "\u0130\u1734\u2e43", strings.Repeat("é", 101), "\x00\ufffd\u200b",
	} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		ids, err := tok.Tokenize(text)
		_, _, encErr := tok.Encode(text, max(maxLen, 2))
		if !utf8.ValidString(text) {
			if !errors.Is(err, ErrInvalidUTF8) || !errors.Is(encErr, ErrInvalidUTF8) {
				t.Fatalf("invalid UTF-8 %q: Tokenize err %v, Encode err %v", text, err, encErr)
			}
			return
		}
		if err != nil || encErr != nil {
			t.Fatalf("%q: Tokenize err %v, Encode err %v", text, err, encErr)
		}
		if len(ids) < 2 || ids[0] != 101 || ids[len(ids)-1] != 102 {
			t.Fatalf("%q: ids %v lack [CLS]/[SEP]", text, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= int64(tok.VocabSize()) {
				t.Fatalf("%q: id %d outside vocab of %d", text, id, tok.VocabSize())
			}
		}

		enc, truncated, err := tok.Encode(text, maxLen)
		if maxLen < 2 {
			if err == nil {
				t.Fatalf("Encode(%q, %d) accepted maxLen", text, maxLen)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		full, err := tok.Tokenize(strings.TrimFunc(text, isPythonSpace))
		if err != nil {
			t.Fatal(err)
		}
		if truncated != (len(full) > maxLen) || len(enc) != min(len(full), maxLen) {
			t.Fatalf("Encode(%q, %d): %d ids, truncated %v; untruncated %d", text, maxLen, len(enc), truncated, len(full))
		}
		if !equalIDs(enc[:len(enc)-1], full[:len(enc)-1]) || enc[len(enc)-1] != 102 {
			t.Fatalf("Encode(%q, %d) = %v, not a truncation of %v", text, maxLen, enc, full)
		}
	})
}
