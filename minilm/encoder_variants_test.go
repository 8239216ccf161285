package minilm

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// TestEveryEncoderVariantCompiles compiles the encoder's TorchScript source
// in each of its variants (with and without the Normalize module; the CPU
// module with unpadded tokens, and the stock-operator module that export
// and CUDA use) on a small random BERT, and runs each on a padded batch.
// The source lives as a Go string, so only a test catches a variant that no
// longer compiles; parity with sentence-transformers is checked elsewhere
// (TestEmbeddingsMatchSentenceTransformers, the TorchScript export golden).
func TestEveryEncoderVariantCompiles(t *testing.T) {
	cfg := hf.Config{
		ModelType: "bert", VocabSize: 50, HiddenSize: 16, NumHiddenLayers: 2, NumAttentionHeads: 4,
		IntermediateSize: 32, HiddenAct: "gelu", HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1,
		MaxPositionEmbeddings: 16, TypeVocabSize: 2, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
	}
	require.NoError(t, cfg.Validate())
	ids, err := torch.FromInt64([]int64{2, 7, 9, 3, 2, 11, 3, 0}, 2, 4)
	require.NoError(t, err)
	defer ids.Close()
	mask, err := torch.FromInt64([]int64{1, 1, 1, 1, 1, 1, 1, 0}, 2, 4)
	require.NoError(t, err)
	defer mask.Close()
	shapes := paramShapes(cfg)
	for _, normalize := range []bool{true, false} {
		for _, cpu := range []bool{true, false} {
			t.Run(fmt.Sprintf("normalize=%v,cpu=%v", normalize, cpu), func(t *testing.T) {
				mod, err := torch.NewModule("MiniLM")
				require.NoError(t, err)
				defer mod.Close()
				for _, name := range paramOrder(cfg) {
					p, err := torch.Randn(torch.Float32, shapes[name]...)
					require.NoError(t, err)
					require.NoError(t, mod.RegisterParameter(jitName(name), p, false))
					p.Close()
				}
				require.NoError(t, mod.Define(encoderSource(cfg, normalize, cpu)))
				require.NoError(t, mod.Train(false))
				out, err := mod.Forward(ids, mask)
				require.NoError(t, err)
				defer out.Close()
				shape, err := out.Shape()
				require.NoError(t, err)
				assert.Equal(t, []int64{2, 16}, shape)
				v, err := out.Float32s()
				require.NoError(t, err)
				for row := range 2 {
					var ss float64
					for _, x := range v[row*16 : (row+1)*16] {
						require.False(t, math.IsNaN(float64(x)))
						ss += float64(x) * float64(x)
					}
					if normalize {
						assert.InDelta(t, 1, math.Sqrt(ss), 1e-5)
					}
				}
			})
		}
	}
}
