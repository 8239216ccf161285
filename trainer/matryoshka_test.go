package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/torch"
)

// TestMatryoshkaFirstStepMatchesSentenceTransformers compares one step of
// MatryoshkaLoss(MNRL) with sentence-transformers' on loss.json's batch
// (testdata/golden/matryoshka_loss.json, tools/golden/generate.py
// matryoshka), dropout off on both sides.
func TestMatryoshkaFirstStepMatchesSentenceTransformers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "matryoshka_loss.json"))
	require.NoError(t, err)
	var g struct {
		Batch struct {
			Anchors   []string `json:"anchors"`
			Positives []string `json:"positives"`
			Negatives []string `json:"negatives"`
		} `json:"batch"`
		MaxSeqLength int `json:"max_seq_length"`
		Cases        map[string]struct {
			Loss      float64 `json:"loss"`
			GradNorm  float64 `json:"grad_norm"`
			Negatives bool    `json:"negatives"`
			Kwargs    struct {
				Directions       []string `json:"directions"`
				PartitionMode    string   `json:"partition_mode"`
				HardnessMode     string   `json:"hardness_mode"`
				HardnessStrength float64  `json:"hardness_strength"`
			} `json:"kwargs"`
			Dims    []int     `json:"matryoshka_dims"`
			Weights []float64 `json:"matryoshka_weights"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	list := func(xs []float64) string {
		var s []string
		for _, x := range xs {
			s = append(s, fmt.Sprint(x))
		}
		return strings.Join(s, ",")
	}
	for name, want := range g.Cases {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, g.MaxSeqLength)
			var pairs []dataset.Pair
			for i := range g.Batch.Anchors {
				p := dataset.Pair{Anchor: g.Batch.Anchors[i], Positive: g.Batch.Positives[i]}
				if want.Negatives {
					p.Negatives = []string{g.Batch.Negatives[i]}
				}
				pairs = append(pairs, p)
			}
			hp := DefaultHyperParameters()
			hp.Directions = strings.Join(want.Kwargs.Directions, ",")
			hp.PartitionMode = want.Kwargs.PartitionMode
			hp.HardnessMode = want.Kwargs.HardnessMode
			hp.HardnessStrength = want.Kwargs.HardnessStrength
			var dims []string
			for _, d := range want.Dims {
				dims = append(dims, fmt.Sprint(d))
			}
			hp.MatryoshkaDims = strings.Join(dims, ",")
			hp.MatryoshkaWeights = list(want.Weights)
			require.NoError(t, hp.Validate())
			r, err := newRun(context.Background(), m, pairs, hp)
			require.NoError(t, err)
			defer r.close()
			require.NoError(t, m.Worker().Do(context.Background(), func() error { return m.Module().Train(false) }))
			loss, norm, err := r.step([]int{0, 1, 2, 3, 4, 5, 6, 7}, 0)
			require.NoError(t, err)
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
	anchors, err := torch.Randn(torch.Float32, 4, 8)
	require.NoError(t, err)
	defer anchors.Close()
	docs2, err := torch.Randn(torch.Float32, 8, 8)
	require.NoError(t, err)
	defer docs2.Close()
	docs1, err := torch.Randn(torch.Float32, 4, 8)
	require.NoError(t, err)
	defer docs1.Close()
	optional := []string{QueryToQuery, DocToQuery, DocToDoc}
	compiled := 0
	for mask := range 1 << len(optional) {
		dirs := []string{QueryToDoc}
		for i, d := range optional {
			if mask&(1<<i) != 0 {
				dirs = append(dirs, d)
			}
		}
		for _, partition := range []string{"joint", "per_direction"} {
			for _, hardness := range []string{"", "in_batch_negatives", "hard_negatives", "all_negatives"} {
				inner := MultipleNegativesRankingLoss{Scale: 20, Directions: dirs, PartitionMode: partition, HardnessMode: hardness, HardnessStrength: 5}
				if inner.Validate() != nil {
					continue
				}
				l := MatryoshkaLoss{Loss: inner, Dims: []int{8, 4, 2}, Weights: []float64{1, 0.5, 0.25}}
				name := fmt.Sprintf("%v/%s/%s", dirs, partition, hardness)
				c, err := l.Compile()
				require.NoError(t, err, name)
				for _, docs := range []*torch.Tensor{docs1, docs2} {
					s := torch.NewScope()
					loss, err := c.Loss(s, anchors, docs)
					require.NoError(t, err, name)
					v, err := loss.Item()
					require.NoError(t, err, name)
					assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s: loss %v", name, v)
					s.Close()
				}
				c.Close()
				compiled++
			}
		}
	}
	assert.Equal(t, 40, compiled)
	assert.Zero(t, torch.Leaked())
}
