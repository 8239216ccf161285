package trainer

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/torch"
)

// TestMatryoshkaFirstStepMatchesSentenceTransformers compares one step of
// MatryoshkaLoss(MNRL) with sentence-transformers' on loss.json's batch
// (testdata/golden/matryoshka_loss.json, tools/golden/generate.py
// matryoshka), dropout off on both sides.
func TestMatryoshkaFirstStepMatchesSentenceTransformers(t *testing.T) {
	g := readLossGolden(t, "matryoshka_loss.json")
	list := func(xs []float64) string {
		var s []string
		for _, x := range xs {
			s = append(s, fmt.Sprint(x))
		}
		return strings.Join(s, ",")
	}
	for name, want := range g.Cases {
		t.Run(name, func(t *testing.T) {
			hp := DefaultHyperParameters()
			var dims []string
			for _, d := range want.Dims {
				dims = append(dims, fmt.Sprint(d))
			}
			hp.MatryoshkaDims = strings.Join(dims, ",")
			hp.MatryoshkaWeights = list(want.Weights)
			loss, norm := goldenFirstStep(t, g, want, hp)
			t.Logf("loss %.6f (ST %.6f, |diff| %.2g), grad norm %.5f (ST %.5f, |diff| %.2g)",
				loss, want.Loss, math.Abs(loss-want.Loss), norm, want.GradNorm, math.Abs(norm-want.GradNorm))
			assert.InDelta(t, want.Loss, loss, 1e-4, "loss")
			assert.InDelta(t, want.GradNorm, norm, 1e-4*max(1, want.GradNorm), "grad norm")
		})
	}
	assert.Zero(t, torch.Leaked())
}

// TestMatryoshkaSettings checks the parsing and the errors of
// --matryoshka-dims and --matryoshka-weights.
func TestMatryoshkaSettings(t *testing.T) {
	dims, weights, err := ParseMatryoshka(" 64, 384,128 ", "0.5,1,2")
	require.NoError(t, err)
	assert.Equal(t, []int{384, 128, 64}, dims, "sorted descending, as ST")
	assert.Equal(t, []float64{1, 2, 0.5}, weights, "weights follow their dims")
	dims, weights, err = ParseMatryoshka("[64, 384]", "[0.5, 1]")
	require.NoError(t, err)
	assert.Equal(t, []int{384, 64}, dims, "a JSON list, as SageMaker's SDK sends it")
	assert.Equal(t, []float64{1, 0.5}, weights)
	dims, weights, err = ParseMatryoshka("256,512", "")
	require.NoError(t, err)
	assert.Equal(t, []int{512, 256}, dims)
	assert.Equal(t, []float64{1, 1}, weights)

	bad := map[string]struct{ dims, weights, want string }{
		"not a number":    {"384,abc", "", `"abc" is not an integer`},
		"zero":            {"384,0", "", "must be > 0"},
		"negative":        {"-64", "", "must be > 0"},
		"weights count":   {"384,256", "1", "2 dims"},
		"weights alone":   {"", "1,1", "need matryoshka dims"},
		"weight not num":  {"384", "x", `"x" is not a finite number`},
		"weight infinite": {"384", "inf", "not a finite number"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			h := DefaultHyperParameters()
			h.MatryoshkaDims, h.MatryoshkaWeights = c.dims, c.weights
			assert.ErrorContains(t, h.Validate(), c.want)
		})
	}

	h := DefaultHyperParameters()
	h.MatryoshkaDims = "768,384"
	require.NoError(t, h.Validate())
	ml, ok := h.Matryoshka()
	require.True(t, ok)
	assert.ErrorContains(t, ml.Validate(384), "matryoshka dim 768 is larger than the model's embedding dimension 384")
	_, ok = DefaultHyperParameters().Matryoshka()
	assert.False(t, ok)
}

// TestEveryMatryoshkaVariantCompiles compiles MatryoshkaLoss around every
// valid MNRL variant and runs it with and without a hard-negative column.
func TestEveryMatryoshkaVariantCompiles(t *testing.T) {
	compiled := 0
	eachLossVariant(func(name string, inner MultipleNegativesRankingLoss) {
		if inner.Validate() != nil {
			return
		}
		l := MatryoshkaLoss{Loss: inner, Dims: []int{8, 4, 2}, Weights: []float64{1, 0.5, 0.25}}
		c, err := l.Compile()
		require.NoError(t, err, name)
		lossIsFinite(t, name, c)
		compiled++
	})
	assert.Equal(t, 40, compiled)
	assert.Zero(t, torch.Leaked())
}
