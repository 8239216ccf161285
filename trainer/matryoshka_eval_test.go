package trainer

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
)

type vectorsByText map[string][]float32

func (v vectorsByText) Encode(_ context.Context, texts []string, _ int) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = v[t]
	}
	return out, nil
}

// TestEvaluateAtEachDim ranks with the cut vectors: the first dimension
// alone confuses the two documents, the full vectors do not.
func TestEvaluateAtEachDim(t *testing.T) {
	enc := vectorsByText{"q1": {1, 1}, "q2": {1, -1}, "d1": {1, 0.9}, "d2": {1, -0.9}}
	task := dataset.NewIRTask(
		[]dataset.Pair{{Anchor: "q1", Positive: "d1"}, {Anchor: "q2", Positive: "d2"}},
		[]dataset.Pair{{Anchor: "q1", Positive: "d1"}, {Anchor: "q2", Positive: "d2"}})
	full, byDim, err := evaluateTaskDims(context.Background(), enc, task, []int{2, 1})
	require.NoError(t, err)
	require.Len(t, byDim, 2)
	assert.Equal(t, 1.0, full["accuracy@1"])
	assert.Equal(t, full, byDim[0])
	assert.Equal(t, 0.5, byDim[1]["accuracy@1"], "at dim 1 every score ties; ties rank by corpus order")

	_, _, err = evaluateTaskDims(context.Background(), enc, task, []int{3})
	assert.ErrorContains(t, err, "truncate dim 3 is larger than the model's embedding dimension 2")
}

func TestDimReport(t *testing.T) {
	j := &Job{Hyper: DefaultHyperParameters()}
	assert.Nil(t, j.dimMetrics(384, nil, nil), "no matryoshka dims, no table")
	j.Hyper.MatryoshkaDims = "64,384"
	m := func(v float64) IRMetrics { return IRMetrics{"ndcg@10": v} }
	folds := []FoldReport{
		{Matryoshka: j.dimMetrics(384, []IRMetrics{m(0.7), m(0.6)}, []IRMetrics{m(0.8), m(0.7)})},
		{Matryoshka: j.dimMetrics(384, []IRMetrics{m(0.5), m(0.4)}, []IRMetrics{m(0.6), m(0.5)})},
	}
	require.Len(t, folds[0].Matryoshka, 2)
	assert.Equal(t, 384, folds[0].Matryoshka[0].Dim, "descending, as MatryoshkaLoss sorts")
	assert.Equal(t, 256, folds[0].Matryoshka[1].BytesPerVector)
	assert.Equal(t, 6.0, folds[0].Matryoshka[1].Smaller)
	mean := meanDimMetrics(folds)
	require.Len(t, mean, 2)
	assert.InDelta(t, 0.6, mean[0].Base["ndcg@10"], 1e-12)
	assert.InDelta(t, 0.6, mean[1].Tuned["ndcg@10"], 1e-12)
	var b bytes.Buffer
	printDimTable(&b, mean)
	assert.Contains(t, b.String(), "64       256    6.0x   0.5000   0.6000  +0.1000")
}
