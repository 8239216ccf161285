package torch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// scriptFn compiles a TorchScript function `def f(self, ...)` for a test's
// tensor maths (the library exposes only the few ops its callers use; all
// other maths runs in TorchScript, as here) and returns a caller that runs
// it and returns its single output, closed with the test.
func scriptFn(t testing.TB, src string) func(inputs ...*Tensor) *Tensor {
	t.Helper()
	m, err := NewModule("test_fn")
	require.NoError(t, err)
	t.Cleanup(m.Close)
	require.NoError(t, m.Define(src))
	return func(inputs ...*Tensor) *Tensor {
		t.Helper()
		outs, err := m.Run("f", inputs...)
		require.NoError(t, err)
		require.Len(t, outs, 1)
		t.Cleanup(outs[0].Close)
		return outs[0]
	}
}
