package hf

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// parseNormalizerJSON reads one entry of tokenizer.json's "normalizer"
// (null gives nil). Every type HF can write is named in the error of the
// ones not read here.
func parseNormalizerJSON(raw json.RawMessage, what string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := typeOf(raw, what)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		var seq sequenceNormalizer
		for i, r := range v.Normalizers {
			n, err := parseNormalizerJSON(r, fmt.Sprintf("%s.normalizers[%d]", what, i))
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "StripAccents":
		return stripAccentsNormalizer{}, nil
	case "Strip":
		var v struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		return stripNormalizer{left: v.Left, right: v.Right}, nil
	case "Replace":
		var v struct {
			Pattern tjPattern `json:"pattern"`
			Content string    `json:"content"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		pat, err := v.Pattern.compile()
		if err != nil {
			return nil, fmt.Errorf("%s Replace: %w", what, err)
		}
		return replaceNormalizer{pattern: pat, content: v.Content}, nil
	case "Prepend":
		var v struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		return prependNormalizer(v.Prepend), nil
	case "BertNormalizer":
		var v tjBertNormalizer
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		return bertNormalizerFunc{newBertNormalizer(&v)}, nil
	case "Precompiled":
		var v struct {
			Charsmap *string `json:"precompiled_charsmap"`
		}
		if err := decodeComponent(raw, what, typ, &v); err != nil {
			return nil, err
		}
		if v.Charsmap == nil {
			return nil, fmt.Errorf("%s Precompiled: no precompiled_charsmap", what)
		}
		blob, err := base64.StdEncoding.DecodeString(*v.Charsmap)
		if err != nil {
			return nil, fmt.Errorf("%s Precompiled: precompiled_charsmap: %w", what, err)
		}
		if len(blob) == 0 {
			return nil, nil // HF: an empty charsmap normalizes nothing
		}
		pc, err := newPrecompiled(blob)
		if err != nil {
			return nil, fmt.Errorf("%s Precompiled: %w", what, err)
		}
		return pc, nil
	default:
		return nil, fmt.Errorf("unsupported %s type %q", what, typ)
	}
}

type sequenceNormalizer []normalizer

func (s sequenceNormalizer) normalize(x string) string {
	for _, n := range s {
		x = n.normalize(x)
	}
	return x
}

// lowercaseNormalizer is Rust's char::to_lowercase applied per character.
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	out = append(out, s[:i]...)
	for _, r := range s[i:] {
		out = appendLower(out, r)
	}
	return string(out)
}

type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(s string) string { return u.form.String(s) }

// stripAccentsNormalizer drops combining marks (General_Category M), as
// HF's StripAccents does; it is meant to follow NFD or NFKD.
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.M, r) {
			return -1
		}
		return r
	}, s)
}

type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, isRustWhitespace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, isRustWhitespace)
	}
	return s
}

type replaceNormalizer struct {
	pattern splitPattern
	content string
}

func (n replaceNormalizer) normalize(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range n.pattern.findAll(s) {
		b.WriteString(s[last:m[0]])
		b.WriteString(n.content)
		last = m[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

type prependNormalizer string

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

func newBertNormalizer(n *tjBertNormalizer) *bertNormalizer {
	or := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	b := &bertNormalizer{
		cleanText: or(n.CleanText, true),
		chinese:   or(n.HandleChineseChars, true),
		lowercase: or(n.Lowercase, true),
	}
	// HF: strip_accents null means "do whatever lowercase does".
	b.stripAcc = or(n.StripAccents, b.lowercase)
	return b
}

func (b *bertNormalizer) normalizeString(s string) string {
	var sc tokScratch
	return string(b.normalize(&sc, s))
}

// bertNormalizerFunc lets the fused BERT normalizer run in a pipeline.
type bertNormalizerFunc struct{ b *bertNormalizer }

func (f bertNormalizerFunc) normalize(s string) string { return f.b.normalizeString(s) }

// isRustWhitespace is char::is_whitespace (the White_Space property).
func isRustWhitespace(r rune) bool { return unicode.IsSpace(r) }

// isRustAlphanumeric is char::is_alphanumeric: Alphabetic or Numeric.
func isRustAlphanumeric(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.Is(unicode.Nd, r) || unicode.Is(unicode.No, r)
}
