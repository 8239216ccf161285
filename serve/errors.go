package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrorKind is what went wrong, independent of how a route family spells
// it: TEI's TextEmbeddingsError variants (Tokenizer, Validation,
// EmptyBatch, Overloaded, Backend), plus what an HTTP front adds (media
// type, method, route) and the server's own states (loading, load
// failure, shutting down).
type ErrorKind int

const (
	// KindInvalid is a malformed request or a field out of range (400).
	KindInvalid ErrorKind = iota + 1
	// KindValidation is a well-formed request the model cannot serve, as
	// an unknown prompt_name: TEI's Validation (422).
	KindValidation
	// KindTooLarge is a body, input list or input over a limit (413).
	KindTooLarge
	// KindMediaType is a Content-Type the route does not read (415).
	KindMediaType
	// KindMethod is a method the route does not accept (405).
	KindMethod
	// KindNotAcceptable is an Accept header the route cannot answer (406).
	KindNotAcceptable
	// KindNotFound is an unknown route, or /search without an index (404).
	KindNotFound
	// KindOverloaded is a full queue: TEI's Overloaded (429).
	KindOverloaded
	// KindNotReady is a model still loading (503, Retry-After).
	KindNotReady
	// KindLoadFailed is a model that failed to load (503).
	KindLoadFailed
	// KindShuttingDown is a request the server got while it drains (503).
	KindShuttingDown
	// KindUnavailable is a search store that is down or being rebuilt (503).
	KindUnavailable
	// KindCancelled is a client that went away before its answer (499).
	KindCancelled
	// KindInternal is a tokenizer or backend failure: TEI's Backend (500).
	KindInternal
)

// Error is the one error type of the serving core and the request checks.
// Each route family maps its Kind to a status and a body of its own shape
// (writeError, writeTEIError); Err, when set, is the cause, for errors.Is
// and errors.As.
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// errorf makes an *Error with fmt.Errorf's formatting; a %w verb becomes
// its cause.
func errorf(kind ErrorKind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Err: errors.Unwrap(err)}
}

func badRequest(format string, args ...any) *Error {
	return errorf(KindInvalid, format, args...)
}

// asError finds the *Error in err's chain; any other error is an internal
// one, its message kept.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Msg: err.Error(), Err: err}
}

// Status is the HTTP status of a kind, the same on every route family.
func (k ErrorKind) Status() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindValidation:
		return http.StatusUnprocessableEntity
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindMediaType:
		return http.StatusUnsupportedMediaType
	case KindMethod:
		return http.StatusMethodNotAllowed
	case KindNotAcceptable:
		return http.StatusNotAcceptable
	case KindNotFound:
		return http.StatusNotFound
	case KindOverloaded:
		return http.StatusTooManyRequests
	case KindNotReady, KindLoadFailed, KindShuttingDown, KindUnavailable:
		return http.StatusServiceUnavailable
	case KindCancelled:
		return 499 // nginx's "client closed request"; nobody reads it
	default:
		return http.StatusInternalServerError
	}
}

// The "type" of OpenAI's error body, which embtune's own and SageMaker's
// routes answer too.
const (
	typeInvalidRequest  = "invalid_request_error"
	typeTooLarge        = "payload_too_large"
	typeMediaType       = "unsupported_media_type"
	typeMethod          = "method_not_allowed"
	typeNotAcceptable   = "not_acceptable"
	typeNotFound        = "not_found"
	typeRateLimit       = "rate_limit_exceeded"
	typeNotReady        = "model_not_ready"
	typeLoadFailed      = "model_load_failed"
	typeUnavailable     = "service_unavailable"
	typeInternal        = "internal_error"
	typeClientCancelled = "client_closed_request"
)

// openAIType is the kind's "type" in OpenAI's error body.
func (k ErrorKind) openAIType() string {
	switch k {
	case KindInvalid, KindValidation:
		return typeInvalidRequest
	case KindTooLarge:
		return typeTooLarge
	case KindMediaType:
		return typeMediaType
	case KindMethod:
		return typeMethod
	case KindNotAcceptable:
		return typeNotAcceptable
	case KindNotFound:
		return typeNotFound
	case KindOverloaded:
		return typeRateLimit
	case KindNotReady:
		return typeNotReady
	case KindLoadFailed:
		return typeLoadFailed
	case KindShuttingDown, KindUnavailable:
		return typeUnavailable
	case KindCancelled:
		return typeClientCancelled
	default:
		return typeInternal
	}
}

// errorBody is the inside of OpenAI's {"error": {"message", "type"}}.
type errorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
}

// writeError answers err in OpenAI's shape, {"error": {"message": ...,
// "type": ...}}: the error body of /v1/embeddings, of SageMaker's
// /invocations and /ping, and of embtune's own routes.
func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	b, jerr := json.Marshal(struct {
		Error errorBody `json:"error"`
	}{errorBody{e.Msg, e.Kind.openAIType()}})
	if jerr != nil { // cannot happen for two strings; keep the response valid anyway
		b = []byte(`{"error":{"message":"internal error","type":"internal_error"}}`)
	}
	writeErrorJSON(w, e.Kind, b)
}

// writeErrorJSON sends an error body; a client told the model is loading
// is also told when to retry.
func writeErrorJSON(w http.ResponseWriter, k ErrorKind, body []byte) {
	if k == KindNotReady {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, k.Status(), body)
}
