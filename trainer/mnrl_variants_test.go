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
	optional := []string{QueryToQuery, DocToQuery, DocToDoc}
	anchors, err := torch.Randn(torch.Float32, 4, 8)
	require.NoError(t, err)
	defer anchors.Close()
	docs1, err := torch.Randn(torch.Float32, 4, 8)
	require.NoError(t, err)
	defer docs1.Close()
	docs2, err := torch.Randn(torch.Float32, 8, 8)
	require.NoError(t, err)
	defer docs2.Close()
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
				l := MultipleNegativesRankingLoss{Scale: 20, Directions: dirs, PartitionMode: partition, HardnessMode: hardness, HardnessStrength: 5}
				if l.Validate() != nil {
					continue // per_direction with query_to_query or doc_to_doc
				}
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
	assert.Equal(t, 40, compiled) // joint: 8 direction sets × 4 hardness modes; per_direction: 2 sets × 4
	assert.Zero(t, torch.Leaked())
}
