package sagemaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// afterWait reads a job's final state once its SDK waiter has returned
// (werr is the waiter's error, nil when it saw a terminal state). The read
// gets its own short deadline, so a job whose wait was cancelled still
// reports where it stands. Only Completed is a success; kind names the job
// in errors ("training job", "transform job").
func afterWait[R any](ctx context.Context, kind, name string, werr error,
	describe func(context.Context) (R, error), state func(R) (status, reason string)) (R, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	res, err := describe(dctx)
	if err != nil {
		if werr != nil {
			return res, fmt.Errorf("%s %s: %w", kind, name, werr)
		}
		return res, err
	}
	status, reason := state(res)
	return res, jobOutcome(kind, name, status, reason, werr)
}

// jobOutcome judges a job's status after waiting. SageMaker spells the
// terminal states of training and transform jobs alike: Completed, Failed,
// Stopped.
func jobOutcome(kind, name, status, reason string, werr error) error {
	switch status {
	case "Completed":
		return nil
	case "Failed", "Stopped":
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Errorf("%s %s %s: %s", kind, name, strings.ToLower(status), reason)
	}
	if werr == nil {
		werr = errors.New("the waiter returned early")
	}
	return fmt.Errorf("%s %s is still %s: %w", kind, name, status, werr)
}
