package torch

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// embtune.linear_int8 (encoder_ops.cpp) against torch.linear, against its
// ATen version, and each row alone against the batch: a row's result must
// not depend on the rows beside it.
const linearInt8Source = `
def fused(self, x: Tensor, reduce: Tensor, gelu: Tensor) -> Tensor:
    return embtune.linear_int8(x, self.p, self.b, bool(reduce), bool(gelu))

def reference(self, x: Tensor) -> Tensor:
    return torch.linear(x, self.w, self.b)

def rows_alone(self, x: Tensor) -> Tensor:
    y = embtune.linear_int8(x, self.p, self.b, False, False)
    rows: List[Tensor] = []
    for i in range(x.size(0)):
        rows.append(embtune.linear_int8(x.narrow(0, i, 1), self.p, self.b, False, False))
    return (torch.cat(rows, 0) - y).abs().max()

def gelu_fused(self, x: Tensor) -> Tensor:
    ref = torch.gelu(embtune.linear_int8(x, self.p, self.b, False, False))
    return (embtune.linear_int8(x, self.p, self.b, False, True) - ref).abs().max()
`

func TestLinearInt8(t *testing.T) {
	onWorker(t, func() error {
		prev, err := QuantizedEngine()
		require.NoError(t, err)
		defer SetQuantizedEngine(prev) //nolint:errcheck // restoring
		require.NoError(t, ManualSeed(5))
		randn := func(scale float64, shape ...int64) *Tensor {
			t.Helper()
			x, err := Randn(Float32, shape...)
			require.NoError(t, err)
			defer x.Close()
			y, err := x.MulScalar(scale)
			require.NoError(t, err)
			t.Cleanup(y.Close)
			return y
		}
		w, b := randn(0.05, 1152, 384), randn(0.1, 1152)
		one := func(m *Module, method string, inputs ...*Tensor) []float32 {
			t.Helper()
			outs, err := m.Run(method, inputs...)
			require.NoError(t, err)
			defer outs[0].Close()
			v, err := outs[0].Float32s()
			require.NoError(t, err)
			return v
		}
		// worst is the largest |a - b| over the largest |b|.
		worst := func(a, b []float32) float64 {
			require.Len(t, a, len(b))
			d, s := 0.0, 0.0
			for i := range a {
				d = math.Max(d, math.Abs(float64(a[i]-b[i])))
				s = math.Max(s, math.Abs(float64(b[i])))
			}
			return d / s
		}
		for _, c := range []struct {
			engine string
			kind   PackedLinear
			exact  bool // fbgemm's path: a row alone is bit-identical
		}{
			{"fbgemm", Int8PerChannel, true},
			{"fbgemm", Int8PerTensor, true},
			{"onednn", Int8PerChannel, false}, // the ATen version
		} {
			require.NoError(t, SetQuantizedEngine(c.engine))
			m, err := NewModule("Q")
			require.NoError(t, err)
			require.NoError(t, m.RegisterParameter("w", w, false))
			require.NoError(t, m.RegisterParameter("b", b, false))
			require.NoError(t, m.RegisterPackedLinear("p", w, nil, c.kind))
			require.NoError(t, m.Define(linearInt8Source))
			for _, rows := range []int64{1, 7, 300} { // 300 rows run in parallel blocks
				// Rows of very different ranges: one scale per row matters.
				x := randn(1, rows, 384)
				if rows > 1 {
					big := randn(40, 1, 384)
					var err error
					x, err = Cat(0, big, narrowRows(t, x, 1, rows-1))
					require.NoError(t, err)
					t.Cleanup(x.Close)
				}
				ref := one(m, "reference", x)
				for _, reduce := range []bool{false, true} {
					got := one(m, "fused", x, boolTensor(t, reduce), boolTensor(t, false))
					// int8 rounding of weights and activations (7 bits with reduce).
					assert.Less(t, worst(got, ref), 0.03, "%s %s, %d rows, reduce_range %v", c.engine, c.kind, rows, reduce)
				}
				got := one(m, "fused", x, boolTensor(t, false), boolTensor(t, false))
				t.Setenv("EMBTUNE_ENCODER_OPS", "aten")
				aten := one(m, "fused", x, boolTensor(t, false), boolTensor(t, false))
				t.Setenv("EMBTUNE_ENCODER_OPS", "")
				// One scale per row in both, on two grids (m/127 and 2m/255,
				// RowQuant in encoder_ops.cpp): int8 rounding apart.
				assert.Less(t, worst(got, aten), 0.02, "%s %s, %d rows: against the ATen version", c.engine, c.kind, rows)
				alone := one(m, "rows_alone", x)[0]
				if c.exact {
					assert.Zero(t, alone, "%s %s, %d rows: a row alone against in the batch", c.engine, c.kind, rows)
				} else {
					assert.Less(t, float64(alone), 1e-5, "%s %s, %d rows: a row alone against in the batch", c.engine, c.kind, rows)
				}
				assert.Less(t, float64(one(m, "gelu_fused", x)[0]), 1e-5, "%s %s, %d rows: GELU fused", c.engine, c.kind, rows)
			}
			m.Close()
		}
		// A weight of another width is refused with an error.
		require.NoError(t, SetQuantizedEngine("fbgemm"))
		m, err := NewModule("Q")
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.RegisterParameter("w", w, false))
		require.NoError(t, m.RegisterParameter("b", b, false))
		require.NoError(t, m.RegisterPackedLinear("p", w, nil, Int8PerChannel))
		require.NoError(t, m.Define(linearInt8Source))
		_, err = m.Run("fused", randn(1, 3, 100), boolTensor(t, false), boolTensor(t, false))
		assert.Error(t, err)
		return nil
	})
}

func narrowRows(t *testing.T, x *Tensor, start, length int64) *Tensor {
	t.Helper()
	y, err := x.Narrow(0, start, length)
	require.NoError(t, err)
	t.Cleanup(y.Close)
	return y
}

// boolTensor is b as a one-element tensor, which TorchScript reads as a bool.
func boolTensor(t *testing.T, b bool) *Tensor {
	t.Helper()
	v := int64(0)
	if b {
		v = 1
	}
	x, err := FromInt64([]int64{v}, 1)
	require.NoError(t, err)
	t.Cleanup(x.Close)
	return x
}
