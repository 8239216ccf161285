package torch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdamWMatchesTorch replays testdata/golden/adamw.json, written by
// torch.optim.AdamW (tools/golden/generate.py adamw): two parameter groups,
// weight decay on one, and a learning rate that changes every step.
func TestAdamWMatchesTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "adamw.json"))
	require.NoError(t, err)
	type param struct {
		Shape []int64     `json:"shape"`
		Init  []float32   `json:"init"`
		Grads [][]float32 `json:"grads"`
		Final []float32   `json:"final"`
	}
	var g struct {
		LRs         []float64  `json:"lrs"`
		WeightDecay []float64  `json:"weight_decay"`
		Betas       [2]float64 `json:"betas"`
		Eps         float64    `json:"eps"`
		Weight      param      `json:"weight"`
		Bias        param      `json:"bias"`
	}
	require.NoError(t, json.Unmarshal(raw, &g))

	onWorker(t, func() error {
		golden := []param{g.Weight, g.Bias}
		params := make([]*Tensor, len(golden))
		for i, p := range golden {
			x, err := FromFloat32(p.Init, p.Shape...)
			require.NoError(t, err)
			defer x.Close()
			require.NoError(t, x.SetRequiresGrad(true))
			params[i] = x
		}
		opt, err := NewAdamW(AdamWOptions{LR: g.LRs[0], Beta1: g.Betas[0], Beta2: g.Betas[1], Eps: g.Eps})
		require.NoError(t, err)
		defer opt.Close()
		for i, p := range params {
			_, err := opt.AddGroup([]*Tensor{p}, g.LRs[0], g.WeightDecay[i])
			require.NoError(t, err)
		}
		dot := scriptFn(t, "def f(self, p, g):\n    return (p * g).sum()\n")
		add := scriptFn(t, "def f(self, a, b):\n    return a + b\n")
		for step, lr := range g.LRs {
			// d/dp sum(p * grad) = grad: the golden gradients, exactly.
			s := NewScope()
			var loss *Tensor
			for i, p := range golden {
				gt := s.Keep(FromFloat32(p.Grads[step], p.Shape...))
				require.NoError(t, s.Err())
				term := dot(params[i], gt)
				if loss == nil {
					loss = term
				} else {
					loss = add(loss, term)
				}
			}
			require.NoError(t, loss.Backward())
			s.Close()
			require.NoError(t, opt.SetLR(lr))
			require.NoError(t, opt.Step())
			require.NoError(t, opt.ZeroGrad())
		}
		for i, p := range golden {
			got, err := params[i].Float32s()
			require.NoError(t, err)
			require.Len(t, got, len(p.Final))
			for j := range got {
				assert.InDelta(t, p.Final[j], got[j], 1e-6, "param %d element %d", i, j)
			}
		}
		return nil
	})
}
