package trainer

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
)

// TestEncoderFamiliesFirstStep compares the first-step
// MultipleNegativesRankingLoss and gradient norm on each non-BERT encoder
// family's golden folder (tools/golden/encoders.py) with
// sentence-transformers' on the same weights and batch, dropout off.
func TestEncoderFamiliesFirstStep(t *testing.T) {
	ctx := context.Background()
	for _, family := range testmodel.EncoderFamilies(t) {
		t.Run(family, func(t *testing.T) {
			dir, g := testmodel.EncoderFolder(t, family)
			m, err := minilm.Load(ctx, dir, minilm.Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			var pairs []dataset.Pair
			for i := range g.Loss.Anchors {
				pairs = append(pairs, dataset.Pair{Anchor: g.Loss.Anchors[i], Positive: g.Loss.Positives[i]})
			}
			hp := DefaultHyperParameters()
			hp.Scale = g.Loss.Scale
			require.NoError(t, hp.Validate())
			r, err := newRun(ctx, m, pairs, hp)
			require.NoError(t, err)
			defer r.close()
			require.NoError(t, m.Worker().Do(ctx, func() error { return m.Module().Train(false) }))
			batch := make([]int, len(pairs))
			for i := range batch {
				batch[i] = i
			}
			loss, norm, err := r.step(batch, 0)
			require.NoError(t, err)
			t.Logf("loss %.7f (ST %.7f, diff %.2g), grad norm %.7f (ST %.7f, diff %.2g)",
				loss, g.Loss.Loss, loss-g.Loss.Loss, norm, g.Loss.GradNorm, norm-g.Loss.GradNorm)
			assert.InDelta(t, g.Loss.Loss, loss, 1e-4, "loss")
			assert.InDelta(t, g.Loss.GradNorm, norm, 1e-4*max(1, g.Loss.GradNorm), "grad norm")
		})
	}
}
