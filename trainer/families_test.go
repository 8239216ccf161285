package trainer

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// TestTrainDenseHead fine-tunes a folder with a Dense (Tanh) module and
// Normalize: the optimizer updates the Dense weights, and the exported
// folder (2_Dense/model.safetensors included) gives the tuned vectors back.
// A query prompt changes what the anchors are, so it changes the result.
func TestTrainDenseHead(t *testing.T) {
	ctx := context.Background()
	dir, g := testmodel.AssembleFamily(t, "dense-tanh-normalize")
	hp := DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength, hp.LR = 1, 4, 32, 1e-3
	hp.Seed = 1
	const dense = "_st.2_Dense.linear.weight"

	train := func(opts minilm.Options) (*minilm.Model, map[string]hf.RawTensor) {
		opts.Threads = 1
		m, err := minilm.Load(ctx, dir, opts)
		require.NoError(t, err)
		t.Cleanup(m.Close)
		_, err = Train(ctx, m, smallPairs(8), hp, Options{})
		require.NoError(t, err)
		return m, weightsOf(t, m)
	}
	base, err := minilm.Load(ctx, dir, minilm.Options{Threads: 1})
	require.NoError(t, err)
	defer base.Close()
	before := weightsOf(t, base)
	require.Contains(t, before, dense)

	m, after := train(minilm.Options{})
	assert.NotEqual(t, before[dense].Data, after[dense].Data, "training updates the Dense weights")
	assert.NotEqual(t, before["_st.2_Dense.linear.bias"].Data, after["_st.2_Dense.linear.bias"].Data)

	out := filepath.Join(t.TempDir(), "tuned")
	require.NoError(t, m.SaveFolder(ctx, out))
	back, err := minilm.Load(ctx, out, minilm.Options{Threads: 1})
	require.NoError(t, err)
	defer back.Close()
	want, err := m.Encode(ctx, g.Texts, 32)
	require.NoError(t, err)
	got, err := back.Encode(ctx, g.Texts, 32)
	require.NoError(t, err)
	for i := range want {
		assert.InDeltaSlice(t, want[i], got[i], 1e-6, "text %d", i)
	}

	prompt := "query: "
	_, prompted := train(minilm.Options{QueryPrompt: hf.PromptChoice{Text: &prompt}})
	assert.NotEqual(t, after[dense].Data, prompted[dense].Data, "anchors get the query prompt")
	assert.Zero(t, torch.Leaked())
}
