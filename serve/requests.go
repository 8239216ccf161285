package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"

	"github.com/embtune/embtune/hf"
)

// Every route's request, and every check on it that needs no model: each
// decoder turns a body that readBody (body.go) accepted into the core's
// embedInput (parseJSONLines: into texts), or fails with a KindInvalid or
// KindTooLarge *Error. The checks that need the model (prompt_name,
// max_seq_length) are the core's (embedder.go).

// invocationsRequest is SageMaker's /invocations body as the Hugging Face
// containers take it; a bare JSON string or array is accepted too.
type invocationsRequest struct {
	Inputs     json.RawMessage `json:"inputs"`
	PromptName *string         `json:"prompt_name"` // as TEI's /embed
	// Parameters is the Hugging Face inference toolkit's pipeline options:
	// accepted, as those containers take them, and unused.
	Parameters json.RawMessage `json:"parameters"`
}

// decodeInvocations reads /invocations' JSON body. Inputs are truncated
// at max_seq_length and normalised, as sentence-transformers' encode().
func decodeInvocations(body []byte, maxInputs int) (embedInput, error) {
	in := embedInput{Route: "invocations", Role: hf.RoleDefault, Truncate: true, Normalize: true}
	var err error
	switch firstByte(body) {
	case 0:
		return in, badRequest(`request body is empty; send {"inputs": "text"} or {"inputs": ["text", ...]}`)
	case '"', '[':
		in.Texts, err = decodeInputs(body, "request body", maxInputs)
		return in, err
	case '{':
		var req invocationsRequest
		if err := decodeStrict(body, &req); err != nil {
			return in, err
		}
		in.PromptName = req.PromptName
		in.Texts, err = decodeInputs(req.Inputs, "`inputs`", maxInputs)
		return in, err
	default:
		return in, badRequest(`request body must be a JSON object {"inputs": ...}, a string or an array of strings`)
	}
}

// embedRequest is TEI's POST /embed. Unlike TEI, truncate defaults to
// true (sentence-transformers' behaviour). normalize false returns the
// model's own output, which for folders with a Normalize module is
// normalised anyway, as in sentence-transformers.
type embedRequest struct {
	Inputs              json.RawMessage `json:"inputs"`
	Normalize           *bool           `json:"normalize"`
	Truncate            *bool           `json:"truncate"`
	TruncationDirection *string         `json:"truncation_direction"`
	PromptName          *string         `json:"prompt_name"`
}

func decodeEmbed(body []byte, maxInputs int) (embedInput, error) {
	in := embedInput{Route: "embed", Role: hf.RoleDefault}
	if firstByte(body) != '{' {
		return in, badRequest(`request body must be a JSON object {"inputs": ...}`)
	}
	var req embedRequest
	if err := decodeStrict(body, &req); err != nil {
		return in, err
	}
	var err error
	if d := req.TruncationDirection; d != nil {
		if in.Side, err = hf.ParseTruncationDirection(*d); err != nil {
			return in, badRequest("%v", err)
		}
	}
	if in.Texts, err = decodeInputs(req.Inputs, "`inputs`", maxInputs); err != nil {
		return in, err
	}
	in.PromptName = req.PromptName
	in.Truncate = req.Truncate == nil || *req.Truncate
	in.Normalize = req.Normalize == nil || *req.Normalize
	return in, nil
}

// openAIRequest is OpenAI's POST /v1/embeddings. It has no prompt field:
// inputs get the default prompt (--default-prompt-name / --default-prompt,
// else the folder's default_prompt_name), as encode() would.
type openAIRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"` // OpenAI's end-user id: accepted, unused
}

// openAIEmbed is a checked openAIRequest.
type openAIEmbed struct {
	embedInput
	Model  string
	Base64 bool // encoding_format "base64"
}

// decodeOpenAI reads /v1/embeddings' body; served is the dimension the
// server returns, the most "dimensions" may ask for.
func decodeOpenAI(body []byte, maxInputs, served int) (openAIEmbed, error) {
	out := openAIEmbed{embedInput: embedInput{Route: "openai", Role: hf.RoleDefault, Truncate: true, Normalize: true}}
	if firstByte(body) != '{' {
		return out, badRequest(`request body must be a JSON object {"input": ..., "model": ...}`)
	}
	var req openAIRequest
	if err := decodeStrict(body, &req); err != nil {
		return out, err
	}
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		out.Base64 = true
	default:
		return out, badRequest("encoding_format %q is not supported; use \"float\" or \"base64\"", req.EncodingFormat)
	}
	if d := req.Dimensions; d != nil {
		if *d < 1 || *d > served {
			return out, badRequest("dimensions %d is not supported: give 1 to %d (this model's embedding dimension)", *d, served)
		}
		out.Dimensions = *d
	}
	var err error
	if out.Texts, err = decodeInputs(req.Input, "`input`", maxInputs); err != nil {
		return out, err
	}
	out.Model = req.Model
	return out, nil
}

// MaxTopK bounds top_k in /search requests, and MaxSearchHits the hits
// (queries × top_k) of one response, each of which carries its chunk's text.
const (
	MaxTopK       = 1000
	MaxSearchHits = 10000
)

// searchRequest is POST /search: {"query": text or [texts], "top_k": 5}.
type searchRequest struct {
	Query json.RawMessage `json:"query"`
	TopK  *int            `json:"top_k"`
}

// searchQuery is a checked searchRequest. Queries get the query prompt, as
// encode_query (the index holds documents embedded with the document
// prompt), and are truncated at max_seq_length, as sentence-transformers
// does.
type searchQuery struct {
	embedInput
	TopK int
}

// decodeSearch reads /search's body; chunks is the index's size, which
// caps the hits a query can have.
func decodeSearch(body []byte, maxInputs, chunks int) (searchQuery, error) {
	q := searchQuery{embedInput: embedInput{Route: "search", Role: hf.RoleQuery, Truncate: true, Normalize: true}, TopK: 5}
	if firstByte(body) != '{' {
		return q, badRequest(`request body must be a JSON object {"query": ..., "top_k": ...}`)
	}
	var req searchRequest
	if err := decodeStrict(body, &req); err != nil {
		return q, err
	}
	if req.TopK != nil {
		q.TopK = *req.TopK
	}
	if q.TopK < 1 || q.TopK > MaxTopK {
		return q, badRequest("top_k must be between 1 and %d, got %d", MaxTopK, q.TopK)
	}
	var err error
	if q.Texts, err = decodeInputs(req.Query, "`query`", maxInputs); err != nil {
		return q, err
	}
	if hits := len(q.Texts) * min(q.TopK, max(1, chunks)); hits > MaxSearchHits {
		return q, errorf(KindTooLarge, "%d queries × top_k %d is %d hits, more than %d; split the request",
			len(q.Texts), q.TopK, hits, MaxSearchHits)
	}
	return q, nil
}

// decodeInputs reads a JSON string or a non-empty array of strings. It
// streams the array so that an oversized list is refused without decoding
// all of it, and so that null or numbers among the strings are errors
// (json.Unmarshal into []string would turn null into "").
func decodeInputs(raw []byte, field string, maxInputs int) ([]string, error) {
	if c := firstByte(raw); c == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, badRequest("%s is missing; send a string or a list of strings", field)
	}
	typeErr := func() error {
		return badRequest("%s must be a string or a list of strings", field)
	}
	// Token ids are another tokenizer's (LangChain's OpenAIEmbeddings sends
	// tiktoken's by default): refuse them, and say how to send text.
	tokenIDs := func() error {
		return badRequest("%s holds token ids, which are not accepted: the server tokenizes text with the model's own tokenizer; "+
			"send strings (LangChain's OpenAIEmbeddings sends tiktoken ids unless created with check_embedding_ctx_length=False)", field)
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
				if isTokenIDs(tok) {
					return nil, tokenIDs()
				}
				return nil, typeErr()
			}
			if len(out) == maxInputs {
				return nil, errorf(KindTooLarge,
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
		if isTokenIDs(tok) {
			return nil, tokenIDs()
		}
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

func jsonError(err error) *Error {
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

// checkLines refuses a JSON Lines body of more than maxLines lines before
// any of them is parsed.
func checkLines(body []byte, maxLines int) error {
	body = bytes.TrimRight(body, "\r\n")
	if n := bytes.Count(body, []byte("\n")) + 1; n > maxLines {
		return errorf(KindTooLarge, "request has %d lines, more than %d (--max-client-batch-size); split it (Batch Transform: a smaller MaxPayloadInMB)", n, maxLines)
	}
	return nil
}

// parseJSONLines reads /invocations' JSON Lines body (jsonlines.go), one
// text per line. Lines end in \n or \r\n; a final
// newline is optional; an empty line in the middle is an error, since
// output line i must answer input line i.
func parseJSONLines(body []byte) ([]string, error) {
	body = bytes.TrimRight(body, "\r\n")
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest(`request body is empty; send one text per line, as "text" or {"text": "..."}`)
	}
	lines := bytes.Split(body, []byte("\n"))
	texts := make([]string, len(lines))
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		var err error
		switch firstByte(line) {
		case 0:
			return nil, badRequest("line %d is empty; send one text per line", i+1)
		case '"':
			err = json.Unmarshal(line, &texts[i])
		case '{':
			texts[i], err = lineText(line)
			if errors.Is(err, errNoText) {
				return nil, badRequest(`line %d has no "text" string`, i+1)
			}
			if e, ok := err.(*Error); ok {
				return nil, badRequest("line %d: %s", i+1, e.Msg)
			}
		default:
			return nil, badRequest(`line %d must be a JSON string or an object {"text": "..."}`, i+1)
		}
		if err != nil {
			msg := jsonError(err).Msg
			if strings.Contains(err.Error(), "cannot unmarshal") {
				msg = `"text" must be a string`
			}
			return nil, badRequest("line %d: %s", i+1, msg)
		}
	}
	return texts, nil
}

// isTokenIDs tells whether a JSON token opens what OpenAI's API reads as
// token ids: a number, or (inside a list) a nested list of numbers.
func isTokenIDs(tok json.Token) bool {
	switch t := tok.(type) {
	case float64:
		return true
	case json.Delim:
		return t == '['
	}
	return false
}
