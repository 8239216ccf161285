package serve

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The checks on a request's raw body that every JSON route shares, before
// any route reads its fields.

// isJSON accepts application/json, any +json type, and a missing
// Content-Type (many clients omit it; the body is still parsed strictly).
func isJSON(contentType string) bool {
	if strings.TrimSpace(contentType) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// readBody reads at most limit bytes and rejects text that encoding/json
// would silently change.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errorf(KindTooLarge,
			"request body is %d bytes, more than the limit of %d", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, errorf(KindTooLarge,
				"request body is more than the limit of %d bytes", limit)
		}
		return nil, badRequest("reading request body: %v", err)
	}
	body := buf.Bytes()
	if err := checkText(body); err != nil {
		return nil, badRequest("%v", err)
	}
	return body, nil
}

// checkText rejects what encoding/json would silently replace with U+FFFD:
// invalid UTF-8, and \u escapes of unpaired UTF-16 surrogates. Texts are
// never altered behind the caller's back (as in embtune encode).
func checkText(b []byte) error {
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, size := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return fmt.Errorf("request body is not valid UTF-8 (first bad byte at offset %d)", off)
	}
	// A backslash outside a string is a syntax error the decoder reports,
	// so looking at every backslash pair is enough.
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; skips the second half of "\\"
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		if !ok {
			continue // malformed escape: the decoder reports it
		}
		at := i - 1
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if lo, ok := hex4(b, i+3); ok && lo >= 0xDC00 && lo < 0xE000 {
					i += 6
					continue
				}
			}
			return fmt.Errorf("request body has an unpaired UTF-16 surrogate escape at offset %d", at)
		case r >= 0xDC00 && r < 0xE000:
			return fmt.Errorf("request body has an unpaired UTF-16 surrogate escape at offset %d", at)
		}
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// firstByte is the first non-space byte of a JSON document, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}
