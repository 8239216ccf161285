package torch

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkerRepliesAfterGoexit: a job that ends its goroutine with
// runtime.Goexit still gets a reply, and the stopped worker refuses later
// jobs instead of leaving their callers waiting.
func TestWorkerRepliesAfterGoexit(t *testing.T) {
	w, err := NewWorker(1)
	require.NoError(t, err)
	defer w.Close()
	ran := false
	err = w.Do(context.Background(), func() error {
		defer func() { ran = true }()
		runtime.Goexit()
		return nil
	})
	assert.ErrorIs(t, err, ErrWorkerGoexit)
	assert.True(t, ran, "the job's deferred calls ran")
	assert.ErrorIs(t, w.Do(context.Background(), func() error { return nil }), ErrWorkerClosed)
	w.Close()
}

// failingOnWorkerEnv makes TestHelperFailingRequireOnWorker run: it is the
// subject of TestFailedRequireOnWorkerFailsTest, not a test of its own.
const failingOnWorkerEnv = "EMBTUNE_TEST_FAILING_ON_WORKER"

func TestHelperFailingRequireOnWorker(t *testing.T) {
	if os.Getenv(failingOnWorkerEnv) != "1" {
		t.Skip("helper process of TestFailedRequireOnWorkerFailsTest")
	}
	onWorker(t, func() error {
		require.Equal(t, 1, 2, "deliberate failure on the worker")
		return nil
	})
}

// TestFailedRequireOnWorkerFailsTest runs a test whose require fails inside a
// worker callback (FailNow, so runtime.Goexit on the worker's goroutine) in a
// test binary of its own: that test must fail and its binary exit, rather than
// wait on the worker until the package's timeout.
func TestFailedRequireOnWorkerFailsTest(t *testing.T) {
	// -test.timeout only bounds a regression (a hang would otherwise take the
	// whole package's 30 minutes); the outcome is read from the output.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFailingRequireOnWorker$", "-test.v", "-test.timeout=2m", "-test.count=1")
	cmd.Env = append(os.Environ(), failingOnWorkerEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the helper test passed:\n%s", out)
	assert.NotContains(t, string(out), "test timed out", "the helper hung:\n%s", out)
	assert.Contains(t, string(out), "deliberate failure on the worker")
	assert.Contains(t, string(out), ErrWorkerGoexit.Error())
	assert.Contains(t, string(out), "--- FAIL: TestHelperFailingRequireOnWorker")
}
