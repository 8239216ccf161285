package minilm

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/torch"
)

// TestFastDropoutMatchesTorchDropout checks that the CPU training module
// (embtune.dropout_mask, explicit attention) perturbs embeddings as much as
// the stock one (torch.dropout, SDPA's dropout_p): over repeated
// training-mode forwards of the same batch, the mean cosine to the eval-mode
// embedding must agree within sampling error.
func TestFastDropoutMatchesTorchDropout(t *testing.T) {
	m, err := Load(context.Background(), modelDir(t), Options{MaxSeqLength: 64})
	require.NoError(t, err)
	defer m.Close()
	texts := []string{
		"How do I upgrade from one Debian release to the next?",
		"Debian uses apt to install, upgrade and remove packages; dpkg is the lower-level tool it drives.",
		"What is the difference between stable, testing and unstable?",
		"Non-free firmware lives in its own archive area and is not part of the Debian system proper.",
	}
	var seqs [][]int64
	for _, s := range texts {
		ids, _, err := m.Tokenizer.Encode(s, m.MaxSeqLength)
		require.NoError(t, err)
		seqs = append(seqs, ids)
	}
	ref, err := m.EncodeIDs(context.Background(), seqs)
	require.NoError(t, err)

	const runs = 40
	// cosines runs on the worker, so it returns errors instead of failing the test there.
	cosines := func(mod *torch.Module) ([]float64, error) {
		b := PadBatch(seqs, m.Tokenizer.PadID())
		ids, mask, err := b.Tensors(torch.CPU)
		if err != nil {
			return nil, err
		}
		defer ids.Close()
		defer mask.Close()
		if err := mod.Train(true); err != nil {
			return nil, err
		}
		defer mod.Train(false) //nolint:errcheck
		var vals []float64
		for range runs {
			out, err := mod.Forward(ids, mask)
			if err != nil {
				return nil, err
			}
			v, err := out.Float32s()
			out.Close()
			if err != nil {
				return nil, err
			}
			h := len(v) / len(seqs)
			for i := range seqs {
				var dot float64
				for j := range h {
					dot += float64(v[i*h+j]) * float64(ref[i][j])
				}
				vals = append(vals, dot)
			}
		}
		return vals, nil
	}
	var fast, stock []float64
	err = m.Worker().Do(context.Background(), func() error {
		if err := torch.ManualSeed(1); err != nil {
			return err
		}
		if fast, err = cosines(m.module); err != nil {
			return err
		}
		mod, err := m.exportModule()
		if err != nil {
			return err
		}
		defer mod.Close()
		stock, err = cosines(mod)
		return err
	})
	require.NoError(t, err)
	meanSE := func(vals []float64) (mean, se float64) {
		var s, ss float64
		for _, x := range vals {
			s += x
			ss += x * x
		}
		n := float64(len(vals))
		mean = s / n
		return mean, math.Sqrt((ss/n - mean*mean) / n)
	}
	fm, fse := meanSE(fast)
	sm, sse := meanSE(stock)
	t.Logf("mean cosine to eval output: embtune.dropout_mask %.5f±%.5f, torch.dropout %.5f±%.5f", fm, fse, sm, sse)
	assert.Less(t, fm, 0.999, "dropout is active")
	assert.InDelta(t, sm, fm, 4*math.Hypot(fse, sse))
}
