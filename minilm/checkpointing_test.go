package minilm

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/internal/testmodel"
)

// TestEveryFamilyCheckpoints: every family's source, the CPU module's and
// the stock-operator one's (CUDA), calls each layer on one line that
// gradient checkpointing rewrites, and the checkpointed module encodes as
// the plain one when autograd is off (the trainer's step equality is
// trainer's TestGradientCheckpointingStep).
func TestEveryFamilyCheckpoints(t *testing.T) {
	ctx := context.Background()
	for _, family := range testmodel.EncoderFamilies(t) {
		t.Run(family, func(t *testing.T) {
			dir, g := testmodel.EncoderFolder(t, family)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			for _, cpu := range []bool{true, false} {
				src, err := checkpointed(m.fam.source(m.Folder.Config, headOf(m.Folder), cpu), m.Folder.Config.NumHiddenLayers)
				require.NoError(t, err)
				assert.Equal(t, m.Folder.Config.NumHiddenLayers, strings.Count(src, `embtune.checkpoint(self, "layer", (`))
			}
			plain, err := m.Encode(ctx, g.Texts, 7)
			require.NoError(t, err)
			require.NoError(t, m.Worker().Do(ctx, func() error { return m.SetGradientCheckpointing(true) }))
			require.True(t, m.GradientCheckpointing())
			ckpt, err := m.Encode(ctx, g.Texts, 7)
			require.NoError(t, err)
			assert.Equal(t, plain, ckpt)
		})
	}
	_, err := checkpointed("def forward(self, x: Tensor) -> Tensor:\n    return self.layer(x)\n", 1)
	assert.ErrorContains(t, err, "calls self.layer on 0 lines, want one per layer (1)")
}
