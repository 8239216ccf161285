package torch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dropoutMask runs embtune.dropout_mask through TorchScript, as the encoder does.
func dropoutMask(t *testing.T, m *Module, like *Tensor) []float32 {
	t.Helper()
	out, err := m.Forward(like)
	require.NoError(t, err)
	defer out.Close()
	f, err := out.To(CPU, Float32)
	require.NoError(t, err)
	defer f.Close()
	v, err := f.Float32s()
	require.NoError(t, err)
	return v
}

func TestDropoutMask(t *testing.T) {
	onWorker(t, func() error {
		m, err := NewModule("M")
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Define(`
def forward(self, x: Tensor) -> Tensor:
    return embtune.dropout_mask(x, 0.1)

def none(self, x: Tensor) -> Tensor:
    return embtune.dropout_mask(x, 0.0)

def bad(self, x: Tensor) -> Tensor:
    return embtune.dropout_mask(x, 1.0)
`))
		const n = 1<<20 + 3 // odd: the last element has its own half-draw
		x, err := Zeros(Float32, CPU, n)
		require.NoError(t, err)
		defer x.Close()

		require.NoError(t, ManualSeed(7))
		a := dropoutMask(t, m, x)
		b := dropoutMask(t, m, x)
		require.NoError(t, ManualSeed(7))
		again := dropoutMask(t, m, x)
		assert.Equal(t, a, again, "the default generator's seed fixes the mask")
		assert.NotEqual(t, a, b, "each call draws a new mask")

		keep := float32(1 / 0.9)
		dropped := 0
		for _, v := range a {
			if v == 0 {
				dropped++
			} else {
				require.Equal(t, keep, v)
			}
		}
		// Binomial(n, 0.1): the standard deviation is about 307.
		assert.InDelta(t, 0.1*n, float64(dropped), 5*math.Sqrt(0.1*0.9*n))

		// Adjacent elements share a 64-bit draw; they must still be independent.
		both := 0
		for i := 0; i+1 < n; i += 2 {
			if a[i] == 0 && a[i+1] == 0 {
				both++
			}
		}
		assert.InDelta(t, 0.01*n/2, float64(both), 5*math.Sqrt(0.01*0.99*n/2))

		outs, err := m.Run("none", x)
		require.NoError(t, err)
		sum, err := scriptFn(t, "def f(self, x):\n    return x.sum()\n")(outs[0]).Item()
		require.NoError(t, err)
		assert.Equal(t, float64(n), sum, "p = 0 keeps everything")
		outs[0].Close()

		_, err = m.Run("bad", x)
		assert.ErrorContains(t, err, "p must be in [0, 1)")

		// bfloat16 inputs get a bfloat16 mask (autocast training).
		bf, err := x.To(CPU, BFloat16)
		require.NoError(t, err)
		defer bf.Close()
		out, err := m.Forward(bf)
		require.NoError(t, err)
		dt, err := out.DType()
		require.NoError(t, err)
		assert.Equal(t, BFloat16, dt)
		out.Close()
		return nil
	})
}
