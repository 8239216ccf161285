package torch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantizedEngines(t *testing.T) {
	engines, err := QuantizedEngines()
	require.NoError(t, err)
	assert.Contains(t, engines, "fbgemm")
	assert.Contains(t, engines, "onednn")
	err = SetQuantizedEngine("no-such-engine")
	assert.ErrorContains(t, err, "is not in this libtorch")
	assert.ErrorContains(t, err, "fbgemm")
}

// TestPackedLinear checks that the pinned libtorch still has the deprecated
// torch.ao operators the int8 encoder calls, and that they agree with
// torch.linear within int8 rounding.
func TestPackedLinear(t *testing.T) {
	onWorker(t, func() error {
		prev, err := QuantizedEngine()
		require.NoError(t, err)
		defer SetQuantizedEngine(prev) //nolint:errcheck // restoring
		require.NoError(t, ManualSeed(13))
		w, err := Randn(Float32, 64, 32)
		require.NoError(t, err)
		defer w.Close()
		b, err := Randn(Float32, 64)
		require.NoError(t, err)
		defer b.Close()
		x, err := Randn(Float32, 5, 32)
		require.NoError(t, err)
		defer x.Close()
		for _, c := range []struct {
			engine string
			kind   PackedLinear
			call   string
		}{
			{"fbgemm", Int8PerChannel, "quantized.linear_dynamic(x, self.p, True)"},
			{"onednn", Int8PerChannel, "quantized.linear_dynamic(x, self.p, False)"},
			{"fbgemm", Int8PerTensor, "quantized.linear_dynamic(x, self.p, False)"},
			{"fbgemm", Float16Weights, "quantized.linear_dynamic_fp16(x, self.p)"},
		} {
			require.NoError(t, SetQuantizedEngine(c.engine))
			m, err := NewModule("Q")
			require.NoError(t, err)
			require.NoError(t, m.RegisterParameter("w", w, false))
			require.NoError(t, m.RegisterParameter("b", b, false))
			require.NoError(t, m.RegisterPackedLinear("p", w, b, c.kind))
			require.NoError(t, m.Define("def forward(self, x: Tensor) -> Tensor:\n    return "+c.call+
				"\n\ndef reference(self, x: Tensor) -> Tensor:\n    return torch.linear(x, self.w, self.b)\n"))
			got, err := m.Forward(x)
			require.NoError(t, err)
			want, err := m.Run("reference", x)
			require.NoError(t, err)
			g, err := got.Float32s()
			require.NoError(t, err)
			r, err := want[0].Float32s()
			require.NoError(t, err)
			worst, scale := 0.0, 0.0
			for i := range g {
				worst = math.Max(worst, math.Abs(float64(g[i]-r[i])))
				scale = math.Max(scale, math.Abs(float64(r[i])))
			}
			// int8 rounding of weights and activations: about 1% of the output range.
			assert.Less(t, worst/scale, 0.03, "%s %s", c.engine, c.kind)
			got.Close()
			want[0].Close()
			m.Close()
		}
		m, err := NewModule("Q")
		require.NoError(t, err)
		defer m.Close()
		assert.ErrorContains(t, m.RegisterPackedLinear("p", b, nil, Int8PerChannel), "must be 2-D")
		assert.ErrorContains(t, m.RegisterPackedLinear("p", w, x, Int8PerChannel), "bias has shape")
		assert.ErrorContains(t, m.RegisterPackedLinear("p", w, b, PackedLinear(7)), "unknown packed linear kind")
		return nil
	})
}
