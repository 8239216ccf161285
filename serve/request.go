package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// apiError is an error response: {"error": {"message": ..., "type": ...}},
// the shape OpenAI's API uses.
type apiError struct {
	status int
	typ    string
	msg    string
}

const (
	typeInvalidRequest  = "invalid_request_error"
	typeTooLarge        = "payload_too_large"
	typeMediaType       = "unsupported_media_type"
	typeMethod          = "method_not_allowed"
	typeNotFound        = "not_found"
	typeRateLimit       = "rate_limit_exceeded"
	typeNotReady        = "model_not_ready"
	typeLoadFailed      = "model_load_failed"
	typeUnavailable     = "service_unavailable"
	typeInternal        = "internal_error"
	typeClientCancelled = "client_closed_request"
)

func errorf(status int, typ, format string, args ...any) *apiError {
	return &apiError{status: status, typ: typ, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, typeInvalidRequest, format, args...)
}

type errorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	if _, ok := w.(teiWriter); ok {
		writeJSON(w, e.status, teiErrorBody(e))
		return
	}
	b, err := json.Marshal(struct {
		Error errorBody `json:"error"`
	}{errorBody{e.msg, e.typ}})
	if err != nil { // cannot happen for two strings; keep the response valid anyway
		b = []byte(`{"error":{"message":"internal error","type":"internal_error"}}`)
	}
	writeJSON(w, e.status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}

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
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, typeTooLarge,
			"request body is %d bytes, more than the limit of %d", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, typeTooLarge,
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

// parseInvocations reads SageMaker's body: {"inputs": text or [texts]} (the
// Hugging Face containers' shape), or a bare JSON string or array.
func parseInvocations(body []byte, maxInputs int) (texts []string, promptName *string, aerr *apiError) {
	switch firstByte(body) {
	case 0:
		return nil, nil, badRequest(`request body is empty; send {"inputs": "text"} or {"inputs": ["text", ...]}`)
	case '"', '[':
		texts, aerr = decodeInputs(body, "request body", maxInputs)
		return texts, nil, aerr
	case '{':
		var req struct {
			Inputs     json.RawMessage `json:"inputs"`
			PromptName *string         `json:"prompt_name"` // as TEI's /embed
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, nil, jsonError(err)
		}
		texts, aerr = decodeInputs(req.Inputs, "`inputs`", maxInputs)
		return texts, req.PromptName, aerr
	default:
		return nil, nil, badRequest(`request body must be a JSON object {"inputs": ...}, a string or an array of strings`)
	}
}

// decodeInputs reads a JSON string or a non-empty array of strings. It
// streams the array so that an oversized list is refused without decoding
// all of it, and so that null or numbers among the strings are errors
// (json.Unmarshal into []string would turn null into "").
func decodeInputs(raw []byte, field string, maxInputs int) ([]string, *apiError) {
	if c := firstByte(raw); c == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, badRequest("%s is missing; send a string or a list of strings", field)
	}
	typeErr := func() *apiError {
		return badRequest("%s must be a string or a list of strings (token ids are not accepted)", field)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	var out []string
	switch t := tok.(type) {
	case string:
		out = []string{t}
	case json.Delim:
		if t != '[' {
			return nil, typeErr()
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, jsonError(err)
			}
			s, ok := tok.(string)
			if !ok {
				return nil, typeErr()
			}
			if len(out) == maxInputs {
				return nil, errorf(http.StatusRequestEntityTooLarge, typeTooLarge,
					"%s has more than %d inputs; split the request", field, maxInputs)
			}
			out = append(out, s)
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return nil, jsonError(err)
		}
		if len(out) == 0 {
			return nil, badRequest("%s is an empty list; send at least one text", field)
		}
	default:
		return nil, typeErr()
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, badRequest("malformed JSON: data after the end of %s", field)
		}
		return nil, jsonError(err)
	}
	return out, nil
}

func jsonError(err error) *apiError {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest("field %q must be a JSON %s, not %s", typeErr.Field, jsonType(typeErr.Type), typeErr.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of input")
	default:
		return badRequest("malformed JSON: %v", err)
	}
}

func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	default:
		return "number"
	}
}

// appendMatrix writes vectors as a JSON array of arrays with the shortest
// decimal form that reads back to the same float32.
func appendMatrix(buf []byte, vecs [][]float32) ([]byte, error) {
	buf = append(buf, '[')
	for i, v := range vecs {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendVector(buf, v); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

var errNonFinite = errors.New("the model produced a non-finite value")

func appendVector(buf []byte, v []float32) ([]byte, error) {
	buf = append(buf, '[')
	for i, x := range v {
		if i > 0 {
			buf = append(buf, ',')
		}
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errNonFinite // JSON has no NaN; fail rather than send invalid JSON
		}
		buf = strconv.AppendFloat(buf, f, 'g', -1, 32)
	}
	return append(buf, ']'), nil
}

// appendBase64 writes v as base64 of little-endian float32s, OpenAI's
// encoding_format "base64".
func appendBase64(buf []byte, v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.AppendEncode(buf, raw)
}
