package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The fused operators of encoder_ops.cpp against the ATen operators they
// replace in the int8 encoder: masked scaled_dot_product_attention on a
// padded batch (the encoder's former path), layer_norm of the sum, and
// gelu. Each method returns the largest absolute difference.
const encoderOpsSource = `
def attention(self, qkv: Tensor, lengths: Tensor, n_heads: Tensor) -> Tensor:
    heads = int(n_heads)
    b = lengths.size(0)
    s = int(lengths.max())
    h = qkv.size(1) // 3
    mask = torch.arange(s).unsqueeze(0) < lengths.unsqueeze(1)
    idx = mask.reshape(-1).nonzero().squeeze(1)
    padded = qkv.new_zeros([b * s, 3 * h]).index_copy(0, idx, qkv).view(b, s, 3, heads, h // heads).permute(2, 0, 3, 1, 4)
    ref = torch.scaled_dot_product_attention(padded[0], padded[1], padded[2], mask.unsqueeze(1).unsqueeze(2))
    ref = ref.transpose(1, 2).reshape(b * s, h).index_select(0, idx)
    offsets = torch.cat([lengths.new_zeros([1]), lengths.cumsum(0)])
    return (embtune.attention(qkv, offsets, heads) - ref).abs().max()

def add_layer_norm(self, a: Tensor, r: Tensor, w: Tensor, b: Tensor, smooth: Tensor) -> Tensor:
    ref = torch.layer_norm(a + r, [a.size(1)], w, b, 1e-12)
    x, xs = embtune.add_layer_norm(a, r, w, b, 1e-12, smooth)
    y, ys = embtune.add_layer_norm(a, r, w, b, 1e-12, None)
    assert ys is y
    return torch.stack([(x - ref).abs().max(), (xs - ref * smooth).abs().max(), (y - ref).abs().max()]).max()

def gelu(self, x: Tensor) -> Tensor:
    ref = torch.gelu(x)
    y = x.clone()
    out = embtune.gelu_(y)
    assert out is y
    return (y - ref).abs().max()

def call_attention(self, qkv: Tensor, offsets: Tensor, heads: Tensor) -> Tensor:
    return embtune.attention(qkv, offsets, int(heads))

def call_add_layer_norm(self, a: Tensor, r: Tensor, w: Tensor) -> Tensor:
    return embtune.add_layer_norm(a, r, w, w, 1e-12, None)[0]
`

func TestEncoderOpsMatchATen(t *testing.T) {
	// Each kernel set this CPU has, checked to be the one that runs. A set
	// the CPU lacks is skipped, not run as a copy of a narrower one.
	t.Setenv("EMBTUNE_ENCODER_OPS", "")
	best, err := EncoderOpsKernels()
	require.NoError(t, err)
	t.Logf("this CPU's widest encoder kernels: %s", best)
	have := map[string]bool{"aten": true, best: true}
	if best == "avx512" {
		have["avx2"] = true
	}
	for _, c := range []struct{ env, kernels string }{{"", "avx512"}, {"avx2", "avx2"}, {"aten", "aten"}} {
		t.Run(c.kernels, func(t *testing.T) {
			if !have[c.kernels] {
				t.Skipf("this CPU lacks the %s kernels (its widest: %s)", c.kernels, best)
			}
			t.Setenv("EMBTUNE_ENCODER_OPS", c.env)
			got, err := EncoderOpsKernels()
			require.NoError(t, err)
			require.Equal(t, c.kernels, got, "EMBTUNE_ENCODER_OPS=%s", c.env)
			testEncoderOps(t)
		})
	}
}

func testEncoderOps(t *testing.T) {
	onWorker(t, func() error {
		m, err := NewModule("M")
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Define(encoderOpsSource))
		require.NoError(t, ManualSeed(3))
		diff := func(method string, inputs ...*Tensor) float64 {
			t.Helper()
			outs, err := m.Run(method, inputs...)
			require.NoError(t, err)
			defer outs[0].Close()
			v, err := outs[0].Item()
			require.NoError(t, err)
			t.Logf("%s: max |difference| %.3g", method, v)
			return v
		}
		randn := func(shape ...int64) *Tensor {
			t.Helper()
			x, err := Randn(Float32, shape...)
			require.NoError(t, err)
			t.Cleanup(x.Close)
			return x
		}
		for _, c := range []struct {
			name    string
			lengths []int64
			heads   int64
			hidden  int64
		}{
			{"one token", []int64{1}, 12, 384},
			{"one query", []int64{17}, 12, 384},
			{"ragged batch with an empty row", []int64{5, 17, 0, 1, 40, 33}, 12, 384},
			{"long enough to split across threads", []int64{130, 64, 7}, 12, 384},
			{"head size 64 (ATen fallback)", []int64{9, 3}, 6, 384},
		} {
			var total int64
			for _, n := range c.lengths {
				total += n
			}
			lengths, err := FromInt64(c.lengths, int64(len(c.lengths)))
			require.NoError(t, err)
			heads := scalar(t, c.heads)
			d := diff("attention", randn(total, 3*c.hidden), lengths, heads)
			lengths.Close()
			heads.Close()
			assert.Less(t, d, 2e-6, c.name)
		}
		for _, rows := range []int64{1, 17, 300} { // 300×384 takes the parallel path
			w, b, s := randn(384), randn(384), randn(384)
			assert.Less(t, diff("add_layer_norm", randn(rows, 384), randn(rows, 384), w, b, s), 1e-5, "%d rows", rows)
		}
		for _, n := range []int64{7, 1537, 17 * 1536, 200 * 1536} { // 1537: vectors, then a scalar tail
			x, err := randn(n).MulScalar(4)
			require.NoError(t, err)
			assert.Less(t, diff("gelu", x), 5e-6, "%d values", n)
			x.Close()
		}
		return nil
	})
}

func TestEncoderOpsRefuseBadInput(t *testing.T) {
	onWorker(t, func() error {
		m, err := NewModule("M")
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Define(encoderOpsSource))
		qkv, err := Zeros(Float32, CPU, 5, 1152)
		require.NoError(t, err)
		defer qkv.Close()
		offsets, err := FromInt64([]int64{0, 2, 4}, 3)
		require.NoError(t, err)
		defer offsets.Close()
		call := func(method string, inputs ...*Tensor) error {
			outs, err := m.Run(method, inputs...)
			for _, o := range outs {
				o.Close()
			}
			return err
		}
		twelve, seven := scalar(t, 12), scalar(t, 7)
		defer twelve.Close()
		defer seven.Close()
		err = call("call_attention", qkv, offsets, twelve)
		assert.ErrorContains(t, err, "offsets run from 0 to 4, not 0 to 5")

		down, err := FromInt64([]int64{0, 4, 2, 5}, 4)
		require.NoError(t, err)
		defer down.Close()
		err = call("call_attention", qkv, down, twelve)
		assert.ErrorContains(t, err, "offsets decrease")

		err = call("call_attention", qkv, offsets, seven)
		assert.ErrorContains(t, err, "not 3 × hidden")

		floatOffsets, err := Zeros(Float32, CPU, 3)
		require.NoError(t, err)
		defer floatOffsets.Close()
		err = call("call_attention", qkv, floatOffsets, twelve)
		assert.ErrorContains(t, err, "offsets must be an integer CPU tensor")

		wide, err := Zeros(Float64, CPU, 5, 1152)
		require.NoError(t, err)
		defer wide.Close()
		err = call("call_attention", wide, offsets, twelve)
		assert.ErrorContains(t, err, "qkv must be float32")

		a, err := Zeros(Float32, CPU, 5, 384)
		require.NoError(t, err)
		defer a.Close()
		r, err := Zeros(Float32, CPU, 4, 384)
		require.NoError(t, err)
		defer r.Close()
		w, err := Zeros(Float32, CPU, 384)
		require.NoError(t, err)
		defer w.Close()
		err = call("call_add_layer_norm", a, r, w)
		assert.ErrorContains(t, err, "embtune::add_layer_norm: a is [5, 384] but r is [4, 384]")
		return nil
	})
}

// scalar is a 0-d int64 tensor holding v.
func scalar(t *testing.T, v int64) *Tensor {
	t.Helper()
	x, err := FromInt64([]int64{v})
	require.NoError(t, err)
	return x
}
