package trainer

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/torch"
)

// TestEveryLossVariantCompiles compiles the TorchScript source of every
// valid combination of directions, partition mode and hardness mode, and
// runs it once with and without a hard-negative column: the loss lives as a
// Go string, so only a test catches a variant that no longer compiles. The
// values are checked against sentence-transformers by
// TestFirstStepMatchesSentenceTransformers; here they need only be finite.
func TestEveryLossVariantCompiles(t *testing.T) {
	compiled := 0
	eachLossVariant(func(name string, l MultipleNegativesRankingLoss) {
		if l.Validate() != nil {
			return // per_direction with query_to_query or doc_to_doc
		}
		c, err := l.Compile()
		require.NoError(t, err, name)
		lossIsFinite(t, name, c)
		compiled++
	})
	assert.Equal(t, 40, compiled) // joint: 8 direction sets × 4 hardness modes; per_direction: 2 sets × 4
	assert.Zero(t, torch.Leaked())
}

// eachLossVariant calls f with every combination of directions (query_to_doc
// always), partition mode and hardness mode, valid or not.
func eachLossVariant(f func(name string, l MultipleNegativesRankingLoss)) {
	optional := []string{QueryToQuery, DocToQuery, DocToDoc}
	for mask := range 1 << len(optional) {
		dirs := []string{QueryToDoc}
		for i, d := range optional {
			if mask&(1<<i) != 0 {
				dirs = append(dirs, d)
			}
		}
		for _, partition := range []string{"joint", "per_direction"} {
			for _, hardness := range []string{"", "in_batch_negatives", "hard_negatives", "all_negatives"} {
				f(fmt.Sprintf("%v/%s/%s", dirs, partition, hardness),
					MultipleNegativesRankingLoss{Scale: 20, Directions: dirs, PartitionMode: partition, HardnessMode: hardness, HardnessStrength: 5})
			}
		}
	}
}

// lossIsFinite runs c on random 4×8 anchors, with and without a
// hard-negative column, requires a finite loss, and closes c.
func lossIsFinite(t *testing.T, name string, c *CompiledLoss) {
	t.Helper()
	defer c.Close()
	anchors, err := torch.Randn(torch.Float32, 4, 8)
	require.NoError(t, err)
	defer anchors.Close()
	for _, rows := range []int64{4, 8} {
		docs, err := torch.Randn(torch.Float32, rows, 8)
		require.NoError(t, err)
		s := torch.NewScope()
		loss, err := c.Loss(s, anchors, docs)
		require.NoError(t, err, name)
		v, err := loss.Item()
		require.NoError(t, err, name)
		assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s: loss %v", name, v)
		s.Close()
		docs.Close()
	}
}
