// Package synth makes training pairs from documents: an LLM writes questions
// that each chunk answers, and every (question, chunk) is a pair for
// MultipleNegativesRankingLoss. The chunks are the ones `embtune index` cuts
// (package corpus), so training and retrieval see the same units.
package synth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Request is one chat turn asking for N questions.
type Request struct {
	System string
	User   string
	// N is the number of questions asked for; backends that constrain the
	// output to a JSON schema ask for exactly N strings.
	N int
}

// Reply is an LLM's answer with its token usage as the server counted it.
type Reply struct {
	Text         string
	Model        string // the model the server says answered ("" if it does not say)
	InputTokens  int
	OutputTokens int
}

// LLM is a chat backend.
type LLM interface {
	Chat(ctx context.Context, r Request) (Reply, error)
	// Model names the model asked for, recorded with each question.
	Model() string
}

// RetryableError is a failure worth another try after a pause: HTTP 429 and
// 5xx, throttling, a connection that failed.
type RetryableError struct {
	Err error
	// After is the server's Retry-After, 0 when it gave none.
	After time.Duration
}

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// retryable reports whether err is worth another try, and the pause the
// server asked for.
func retryable(err error) (time.Duration, bool) {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// MalformedError is an answer that is not the JSON asked for.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed answer: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}
