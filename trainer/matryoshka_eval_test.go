package trainer

import (
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
	full, byDim, err := EvaluateDims(context.Background(), enc, task, []int{2, 1})
	require.NoError(t, err)
	require.Len(t, byDim, 2)
	assert.Equal(t, 1.0, full["accuracy@1"])
	assert.Equal(t, full, byDim[0])
	assert.Equal(t, 0.5, byDim[1]["accuracy@1"], "at dim 1 every score ties; ties rank by corpus order")

	_, _, err = EvaluateDims(context.Background(), enc, task, []int{3})
	assert.ErrorContains(t, err, "truncate dim 3 is larger than the model's embedding dimension 2")
}
