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
// in each of its variants (every pooling mode alone and all of them
// concatenated, Dense modules with each activation, with and without the
// Normalize module; the CPU module with unpadded tokens, and the
// stock-operator module that export and CUDA use) on a small random BERT,
// runs each on a padded batch, and checks that the two paths agree. The
// source lives as a Go string, so only a test catches a variant that no
// longer compiles; parity with sentence-transformers is checked elsewhere
// (TestEmbeddingsMatchSentenceTransformers, TestFamiliesMatchSentenceTransformers,
// the TorchScript export golden).
func TestEveryEncoderVariantCompiles(t *testing.T) {
	cfg := hf.Config{
		ModelType: "bert", VocabSize: 50, HiddenSize: 16, NumHiddenLayers: 2, NumAttentionHeads: 4,
		IntermediateSize: 32, HiddenAct: "gelu", HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1,
		MaxPositionEmbeddings: 16, TypeVocabSize: 2, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
	}
	require.NoError(t, cfg.Validate())
	ids, err := torch.FromInt64([]int64{2, 7, 9, 3, 2, 11, 3, 0, 2, 3, 0, 0}, 3, 4)
	require.NoError(t, err)
	defer ids.Close()
	mask, err := torch.FromInt64([]int64{1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0}, 3, 4)
	require.NoError(t, err)
	defer mask.Close()
	shapes := paramShapes(cfg)
	all := []string{hf.PoolCLS, hf.PoolMax, hf.PoolMean, hf.PoolMeanSqrtLen, hf.PoolWeightedMean, hf.PoolLastToken}
	heads := map[string]head{"mean,normalize": meanHead(true), "mean": meanHead(false)}
	for _, m := range all {
		heads[m] = head{modes: []string{m}}
	}
	heads["all,dense,normalize"] = head{modes: all, normalize: true, dense: []hf.Dense{
		{Path: "2_Dense", InFeatures: 96, OutFeatures: 12, Bias: true, Activation: hf.ActTanh},
		{Path: "3_Dense", InFeatures: 12, OutFeatures: 10, Bias: false, Activation: hf.ActIdentity},
		{Path: "4_Dense", InFeatures: 10, OutFeatures: 9, Bias: true, Activation: hf.ActReLU},
		{Path: "5_Dense", InFeatures: 9, OutFeatures: 8, Bias: true, Activation: hf.ActSigmoid},
		{Path: "6_Dense", InFeatures: 8, OutFeatures: 7, Bias: true, Activation: hf.ActGELU},
	}}
	for name, hd := range heads {
		require.NoError(t, hd.check())
		dim := 16 * len(hd.modes)
		if n := len(hd.dense); n > 0 {
			dim = hd.dense[n-1].OutFeatures
		}
		params := map[string]*torch.Tensor{}
		for _, p := range paramOrder(cfg) {
			params[p], err = torch.Randn(torch.Float32, shapes[p]...)
			require.NoError(t, err)
		}
		for _, d := range hd.dense {
			params[denseParam(d, "weight")], err = torch.Randn(torch.Float32, int64(d.OutFeatures), int64(d.InFeatures))
			require.NoError(t, err)
			if d.Bias {
				params[denseParam(d, "bias")], err = torch.Randn(torch.Float32, int64(d.OutFeatures))
				require.NoError(t, err)
			}
		}
		outs := map[bool][]float32{}
		for _, cpu := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s,cpu=%v", name, cpu), func(t *testing.T) {
				mod, err := torch.NewModule("MiniLM")
				require.NoError(t, err)
				defer mod.Close()
				for p, v := range params {
					require.NoError(t, mod.RegisterParameter(jitName(p), v, false))
				}
				require.NoError(t, mod.Define(encoderSource(cfg, hd, cpu, bertArch{})))
				require.NoError(t, mod.Train(false))
				out, err := mod.Forward(ids, mask)
				require.NoError(t, err)
				defer out.Close()
				shape, err := out.Shape()
				require.NoError(t, err)
				assert.Equal(t, []int64{3, int64(dim)}, shape)
				v, err := out.Float32s()
				require.NoError(t, err)
				outs[cpu] = v
				for row := range 3 {
					var ss float64
					for _, x := range v[row*dim : (row+1)*dim] {
						require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
						ss += float64(x) * float64(x)
					}
					if hd.normalize {
						assert.InDelta(t, 1, math.Sqrt(ss), 1e-5)
					}
				}
			})
		}
		if len(outs[true]) == len(outs[false]) {
			for i := range outs[true] {
				require.InDelta(t, outs[true][i], outs[false][i], 1e-4, "%s: unpadded and padded paths differ at %d", name, i)
			}
		}
		for _, p := range params {
			p.Close()
		}
	}
}
