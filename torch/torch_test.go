package torch

import (
	"context"
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func onWorker(t *testing.T, fn func() error) {
	t.Helper()
	w, err := NewWorker(2)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Do(context.Background(), fn))
}

func TestTensorRoundTrip(t *testing.T) {
	x, err := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	defer x.Close()
	shape, err := x.Shape()
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3}, shape)
	got, err := x.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, got)
	_, err = x.Int64s()
	assert.ErrorContains(t, err, "float32")
}

func TestBadInputsAreErrors(t *testing.T) {
	_, err := FromFloat32([]float32{1, 2, 3}, 2, 2)
	assert.Error(t, err)
	_, err = FromFloat32([]float32{1}, -1)
	assert.Error(t, err)

	a, err := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	require.NoError(t, err)
	defer a.Close()
	_, err = a.MatMul(a) // [2,3] @ [2,3]: libtorch raises, we get an error
	require.Error(t, err)
	assert.Contains(t, err.Error(), "matmul")
	assert.NotContains(t, err.Error(), "Exception raised from", "backtraces are stripped")

	a.Close()
	_, err = a.Shape()
	assert.ErrorIs(t, err, ErrClosed)
	a.Close() // idempotent

	_, err = LoadModule(filepath.Join(t.TempDir(), "missing.pt"), CPU)
	assert.Error(t, err)

	m, err := NewModule("M")
	require.NoError(t, err)
	defer m.Close()
	assert.Error(t, m.Define("def forward(self, x: Tensor) -> Tensor:\n    return x +\n"))
	_, err = m.Run("nope")
	assert.Error(t, err)
}

func TestModuleDefineTrainSaveLoad(t *testing.T) {
	dir := t.TempDir()
	onWorker(t, func() error {
		require.NoError(t, ManualSeed(7))
		m, err := NewModule("Linear")
		require.NoError(t, err)
		defer m.Close()
		w, err := Randn(Float32, 3, 4)
		require.NoError(t, err)
		defer w.Close()
		b, err := Zeros(Float32, CPU, 3)
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, m.RegisterParameter("weight", w, true))
		require.NoError(t, m.RegisterParameter("bias", b, false))
		require.NoError(t, m.Define(`
def forward(self, x: Tensor) -> Tensor:
    return torch.linear(x, self.weight, self.bias)

def pair(self, x: Tensor) -> Tuple[Tensor, Tensor]:
    return x, x * 2.0
`))
		x, err := Randn(Float32, 5, 4)
		require.NoError(t, err)
		defer x.Close()
		y, err := m.Forward(x)
		require.NoError(t, err)
		defer y.Close()
		shape, err := y.Shape()
		require.NoError(t, err)
		assert.Equal(t, []int64{5, 3}, shape)

		pair, err := m.Run("pair", x)
		require.NoError(t, err)
		assert.Len(t, pair, 2)
		for _, p := range pair {
			p.Close()
		}

		params, err := m.NamedParameters()
		require.NoError(t, err)
		require.Len(t, params, 2)
		assert.Equal(t, "weight", params[0].Name)
		rg, err := params[1].Tensor.RequiresGrad()
		require.NoError(t, err)
		assert.False(t, rg)
		require.NoError(t, m.SetRequiresGrad(true))
		rg, err = params[1].Tensor.RequiresGrad()
		require.NoError(t, err)
		assert.True(t, rg)

		// One AdamW step on a squared loss moves the weights.
		opt, err := NewAdamW(AdamWOptions{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
		require.NoError(t, err)
		defer opt.Close()
		_, err = opt.AddGroup([]*Tensor{params[0].Tensor}, 0.1, 0.01)
		require.NoError(t, err)
		_, err = opt.AddGroup([]*Tensor{params[1].Tensor}, 0.1, 0)
		require.NoError(t, err)
		before, err := params[0].Tensor.Float32s()
		require.NoError(t, err)

		s := NewScope()
		defer s.Close()
		out := s.Keep(m.Forward(x))
		require.NoError(t, s.Err())
		loss := scriptFn(t, "def f(self, x):\n    return x.pow(2).mean()\n")(out)
		require.NoError(t, loss.Backward())
		norm, err := ClipGradNorm([]*Tensor{params[0].Tensor, params[1].Tensor}, 1.0)
		require.NoError(t, err)
		assert.Greater(t, norm, 0.0)
		require.NoError(t, opt.Step())
		require.NoError(t, opt.ZeroGrad())
		after, err := params[0].Tensor.Float32s()
		require.NoError(t, err)
		assert.NotEqual(t, before, after)
		closeNamed(params)

		require.NoError(t, opt.Save(filepath.Join(dir, "opt.pt")))
		require.NoError(t, m.Save(filepath.Join(dir, "m.pt")))
		l, err := LoadModule(filepath.Join(dir, "m.pt"), CPU)
		require.NoError(t, err)
		defer l.Close()
		y1, err := m.Forward(x)
		require.NoError(t, err)
		defer y1.Close()
		y2, err := l.Forward(x)
		require.NoError(t, err)
		defer y2.Close()
		a, _ := y1.Float32s()
		b2, _ := y2.Float32s()
		assert.Equal(t, a, b2, "a saved and reloaded module is bit-identical")
		return nil
	})
}

func TestMeanPoolAndCosSim(t *testing.T) {
	x, err := FromFloat32([]float32{1, 0, 3, 4, 100, 100}, 1, 3, 2)
	require.NoError(t, err)
	defer x.Close()
	mask, err := FromInt64([]int64{1, 1, 0}, 1, 3)
	require.NoError(t, err)
	defer mask.Close()
	p, err := MeanPool(x, mask, false)
	require.NoError(t, err)
	defer p.Close()
	got, err := p.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{2, 2}, got)
	n, err := MeanPool(x, mask, true)
	require.NoError(t, err)
	defer n.Close()
	got, err = n.Float32s()
	require.NoError(t, err)
	assert.InDelta(t, 1/math.Sqrt2, got[0], 1e-6)

	bad, err := FromInt64([]int64{1, 1}, 1, 2)
	require.NoError(t, err)
	defer bad.Close()
	_, err = MeanPool(x, bad, true)
	assert.ErrorContains(t, err, "mask")
}

// TestInferenceModeOnWorker checks that InferenceMode turns c10's inference
// mode on for fn and off after it: a tensor made inside is an inference
// tensor, which autograd refuses outside inference mode (requires_grad and an
// in-place copy are errors), while a tensor made before or after is not. A
// NoGrad tensor, made with autograd merely off, is not an inference tensor.
func TestInferenceModeOnWorker(t *testing.T) {
	var inside, before, after, noGrad *Tensor
	var insideGrad bool
	var insideErr error
	defer func() {
		for _, x := range []*Tensor{inside, before, after, noGrad} {
			if x != nil {
				x.Close()
			}
		}
	}()
	onWorker(t, func() error {
		var err error
		if before, err = Randn(Float32, 2, 2); err != nil {
			return err
		}
		if err := before.SetRequiresGrad(true); err != nil {
			return err
		}
		if err := InferenceMode(func() error {
			x, err := Randn(Float32, 2, 2)
			if err != nil {
				return err
			}
			defer x.Close()
			// Inside inference mode a product of a requires_grad tensor
			// records nothing.
			y, err := before.MatMul(x)
			if err != nil {
				return err
			}
			inside = y
			insideGrad, insideErr = y.RequiresGrad()
			return nil
		}); err != nil {
			return err
		}
		if after, err = Randn(Float32, 2, 2); err != nil {
			return err
		}
		return NoGrad(func() error {
			noGrad, err = Randn(Float32, 2, 2)
			return err
		})
	})
	require.NoError(t, insideErr)
	assert.False(t, insideGrad, "a product made in inference mode requires grad")

	// Outside inference mode, the tensor made inside is an inference tensor.
	var setErr, copyErr, afterErr, noGradErr, copyAfterErr error
	onWorker(t, func() error {
		setErr = inside.SetRequiresGrad(true)
		copyErr = inside.CopyFrom(after)
		afterErr = after.SetRequiresGrad(true)
		noGradErr = noGrad.SetRequiresGrad(true)
		copyAfterErr = noGrad.CopyFrom(after)
		return nil
	})
	assert.ErrorContains(t, setErr, "inference tensor")
	assert.ErrorContains(t, copyErr, "inference tensor")
	assert.NoError(t, afterErr, "inference mode is still on after InferenceMode returned")
	assert.NoError(t, noGradErr, "a NoGrad tensor is an inference tensor")
	assert.NoError(t, copyAfterErr)
}

func TestWorkerSurvivesPanicAndCancel(t *testing.T) {
	w, err := NewWorker(1)
	require.NoError(t, err)
	defer w.Close()
	err = w.Do(context.Background(), func() error { panic("boom") })
	assert.ErrorContains(t, err, "boom")
	assert.NoError(t, w.Do(context.Background(), func() error { return nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, w.Do(ctx, func() error { return nil }), context.Canceled)
	w.Close()
	assert.ErrorIs(t, w.Do(context.Background(), func() error { return nil }), ErrWorkerClosed)
}

func TestNothingLeaked(t *testing.T) {
	// Every test above closes what it creates; the runtime cleanups must not
	// have had anything to free.
	runtime.GC()
	runtime.GC()
	assert.Zero(t, Leaked())
}

func TestParseDevice(t *testing.T) {
	d, err := ParseDevice("cpu")
	require.NoError(t, err)
	assert.Equal(t, CPU, d)
	d, err = ParseDevice("auto")
	require.NoError(t, err)
	assert.Equal(t, CPU, d, "no GPU on this machine")
	_, err = ParseDevice("cuda:0")
	assert.Error(t, err)
	_, err = ParseDevice("tpu")
	assert.Error(t, err)
}
