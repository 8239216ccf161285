package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
)

// decodeStrict decodes the JSON object body into req (a pointer to a
// struct with json tags), refusing keys that are not exactly one of its
// fields. encoding/json matches keys case-insensitively and ignores
// unknown ones; TEI and OpenAI do neither, and a mis-spelt option silently
// ignored ("Normalize", "top-k") is a wrong answer, not a default.
func decodeStrict(body []byte, req any) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return jsonError(err)
	}
	if err := checkKeys(keys, fieldNames(req)); err != nil {
		return err
	}
	if err := json.Unmarshal(body, req); err != nil {
		return jsonError(err)
	}
	return nil
}

// checkKeys refuses a key of keys not in names, naming the field it may
// have meant.
func checkKeys(keys map[string]json.RawMessage, names []string) error {
	var bad []string
	for k := range keys {
		if !contains(names, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	k := bad[0]
	for _, n := range names {
		if loose(k) == loose(n) {
			return badRequest("unknown field %q: did you mean %q? (field names are case-sensitive)", k, n)
		}
	}
	return badRequest("unknown field %q: this route takes %s", k, strings.Join(quoted(names), ", "))
}

// loose folds case and drops "_" and "-", to name the field a key meant.
func loose(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

func contains(names []string, k string) bool {
	for _, n := range names {
		if n == k {
			return true
		}
	}
	return false
}

func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		b, _ := json.Marshal(n)
		out[i] = string(b)
	}
	return out
}

// fieldNames lists the json names of the struct req points to.
func fieldNames(req any) []string {
	t := reflect.TypeOf(req).Elem()
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// errNoText is lineText's error for a record without "text".
var errNoText = errors.New(`no "text" string`)

// lineText is the text of a JSON Lines record {"text": ...}. Other keys
// are allowed (the chunk records of embtune index --write-chunks carry
// id, doc and title); a key that differs from "text" only in case is not.
func lineText(line []byte) (string, error) {
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", err
	}
	raw, ok := rec["text"]
	if !ok {
		for k := range rec {
			if strings.EqualFold(k, "text") {
				return "", badRequest("unknown field %q: did you mean \"text\"? (field names are case-sensitive)", k)
			}
		}
		return "", errNoText
	}
	raw = bytes.TrimSpace(raw)
	if firstByte(raw) != '"' {
		return "", badRequest(`"text" must be a string`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}
