package torch

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkpointSource is two layers with dropout; call is how forward runs
// each layer: "self.layer(%s)" or through embtune.checkpoint.
const checkpointSource = `
def layer(self, x: Tensor, n: int, w: Tensor, b: Tensor, scale: Optional[Tensor]) -> Tensor:
    y = torch.tanh(torch.linear(x, w, b))
    if self.training:
        y = y * embtune.dropout_mask(y, 0.25)
        y = torch.dropout(y, 0.25, True)
    if scale is not None:
        y = y * scale
    return y + x * float(n)

def forward(self, x: Tensor) -> Tensor:
    x = %s
    x = %s
    return (x * x).sum()
`

func checkpointModule(t *testing.T, ckpt bool, train bool) *Module {
	t.Helper()
	calls := []string{"self.layer(x, 1, self.w0, self.b0, None)", "self.layer(x, 2, self.w1, self.b1, self.s)"}
	if ckpt {
		calls = []string{`embtune.checkpoint(self, "layer", (x, 1, self.w0, self.b0, None))`,
			`embtune.checkpoint(self, "layer", (x, 2, self.w1, self.b1, self.s))`}
	}
	m, err := NewModule("ckpt")
	require.NoError(t, err)
	t.Cleanup(m.Close)
	require.NoError(t, ManualSeed(3))
	for _, p := range []struct {
		name  string
		shape []int64
	}{{"w0", []int64{8, 8}}, {"b0", []int64{8}}, {"w1", []int64{8, 8}}, {"b1", []int64{8}}, {"s", []int64{8}}} {
		r, err := Randn(Float32, p.shape...)
		require.NoError(t, err)
		require.NoError(t, m.RegisterParameter(p.name, r, true))
		r.Close()
	}
	require.NoError(t, m.Define(fmt.Sprintf(checkpointSource, calls[0], calls[1])))
	require.NoError(t, m.Train(train))
	return m
}

// gradsOf runs forward and backward from seed and returns the loss, every
// parameter's gradient and the input's, and the generator state after.
func gradsOf(t *testing.T, m *Module, seed uint64) (float64, [][]float32, []byte) {
	t.Helper()
	require.NoError(t, ManualSeed(11))
	x, err := Randn(Float32, 4, 8)
	require.NoError(t, err)
	defer x.Close()
	require.NoError(t, x.SetRequiresGrad(true))
	require.NoError(t, ManualSeed(seed))
	out, err := m.Forward(x)
	require.NoError(t, err)
	defer out.Close()
	loss, err := out.Item()
	require.NoError(t, err)
	require.NoError(t, out.Backward())
	params, err := m.NamedParameters()
	require.NoError(t, err)
	var grads [][]float32
	for _, p := range append(params, NamedTensor{Name: "x", Tensor: x}) {
		g, err := p.Tensor.Grad()
		require.NoError(t, err)
		require.NotNil(t, g, p.Name)
		v, err := g.Float32s()
		require.NoError(t, err)
		g.Close()
		grads = append(grads, v)
		if p.Name != "x" {
			p.Tensor.Close()
		}
	}
	rng, err := RNGState()
	require.NoError(t, err)
	return loss, grads, rng
}

// TestCheckpointEqualsPlain: a layer run through embtune.checkpoint gives
// the loss and gradients of the plain call, with dropout on (its masks
// replay from the saved generator state) and off, leaves the generator
// where the plain run leaves it, and keeps no graph inside the layer.
func TestCheckpointEqualsPlain(t *testing.T) {
	for _, train := range []bool{true, false} {
		t.Run(fmt.Sprintf("dropout=%v", train), func(t *testing.T) {
			plainLoss, plainGrads, plainRNG := gradsOf(t, checkpointModule(t, false, train), 5)
			ckptLoss, ckptGrads, ckptRNG := gradsOf(t, checkpointModule(t, true, train), 5)
			require.Equal(t, plainLoss, ckptLoss)
			require.Equal(t, plainRNG, ckptRNG)
			require.Len(t, ckptGrads, len(plainGrads))
			for i := range plainGrads {
				for j := range plainGrads[i] {
					require.LessOrEqual(t, math.Abs(float64(plainGrads[i][j]-ckptGrads[i][j])), 1e-6, "tensor %d element %d", i, j)
				}
			}
		})
	}
	// Another seed draws other masks: the replay is not trivially equal.
	l1, _, _ := gradsOf(t, checkpointModule(t, true, true), 5)
	l2, _, _ := gradsOf(t, checkpointModule(t, true, true), 6)
	require.NotEqual(t, l1, l2)
}

// TestCheckpointNoGrad: without autograd the operator calls the method.
func TestCheckpointNoGrad(t *testing.T) {
	plain, ckpt := checkpointModule(t, false, false), checkpointModule(t, true, false)
	x, err := Randn(Float32, 4, 8)
	require.NoError(t, err)
	defer x.Close()
	var a, b float64
	require.NoError(t, NoGrad(func() error {
		o, err := plain.Forward(x)
		require.NoError(t, err)
		a, err = o.Item()
		o.Close()
		require.NoError(t, err)
		o, err = ckpt.Forward(x)
		require.NoError(t, err)
		b, err = o.Item()
		o.Close()
		return err
	}))
	require.Equal(t, a, b)
}

// TestCheckpointErrors: misuse comes back as an error from the call that
// ran the module, not a crash.
func TestCheckpointErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"def forward(self, x: Tensor) -> Tensor:\n    return embtune.checkpoint(self, \"nope\", (x, self.w))\n", "has no method nope"},
		{"def forward(self, x: Tensor) -> Tensor:\n    return embtune.checkpoint(x, \"nope\", (x, self.w))\n", "must be the module"},
		{"def forward(self, x: Tensor) -> Tensor:\n    return embtune.checkpoint(self, \"f\", x)\n", "must be a tuple"},
		{"def f(self, x: Tensor, w: Tensor) -> int:\n    return 1\n\ndef forward(self, x: Tensor) -> Tensor:\n    return embtune.checkpoint(self, \"f\", (x, self.w))\n", "must return one tensor"},
		{"def f(self, x: Tensor, w: Tensor) -> Tensor:\n    return torch.matmul(x, w[:3])\n\ndef forward(self, x: Tensor) -> Tensor:\n    return embtune.checkpoint(self, \"f\", (x, self.w))\n", "mat1 and mat2 shapes cannot be multiplied"},
	} {
		m, err := NewModule("ckpt_err")
		require.NoError(t, err)
		w, err := Randn(Float32, 8, 8)
		require.NoError(t, err)
		require.NoError(t, m.RegisterParameter("w", w, true))
		w.Close()
		require.NoError(t, m.Define(tc.src))
		x, err := Randn(Float32, 4, 8)
		require.NoError(t, err)
		_, err = m.Forward(x)
		require.ErrorContains(t, err, tc.want)
		x.Close()
		m.Close()
	}
}

// TestRedefineSharesParameters: a redefined module runs new source over
// the same tensors, so a change through one shows in the other.
func TestRedefineSharesParameters(t *testing.T) {
	m := checkpointModule(t, false, false)
	r, err := m.Redefine("ckpt2", fmt.Sprintf(checkpointSource,
		`embtune.checkpoint(self, "layer", (x, 1, self.w0, self.b0, None))`,
		`embtune.checkpoint(self, "layer", (x, 2, self.w1, self.b1, self.s))`))
	require.NoError(t, err)
	defer r.Close()
	training, err := r.IsTraining()
	require.NoError(t, err)
	require.False(t, training)
	a, err := m.NamedParameters()
	require.NoError(t, err)
	b, err := r.NamedParameters()
	require.NoError(t, err)
	require.Len(t, b, len(a))
	z, err := Zeros(Float32, CPU, 8)
	require.NoError(t, err)
	defer z.Close()
	require.NoError(t, NoGrad(func() error { return a[1].Tensor.CopyFrom(z) }))
	v, err := b[1].Tensor.Float32s()
	require.NoError(t, err)
	require.Equal(t, make([]float32, 8), v)
	for _, p := range append(a, b...) {
		p.Tensor.Close()
	}
}
