package minilm

import (
	"errors"
	"fmt"
	"math"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// mpnet is MPNetModel (model_type "mpnet": all-mpnet-base-v2): BERT's
// post-norm layers under other names, no token types, positions numbered
// from padding_idx+1 as RoBERTa's (MPNetEmbeddings fixes padding_idx at 1),
// and a relative position bias [32 buckets, heads] shared by every layer and
// added to the attention scores, bucketed as
// MPNetEncoder.relative_position_bucket does (max_distance 128).
var mpnet = &family{
	name:         "mpnet",
	prefixes:     []string{"mpnet."},
	validate:     validateMPNet,
	shapes:       mpnetShapes,
	order:        mpnetOrder,
	layerPrefix:  "encoder.layer.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings - mpnetPaddingIdx - 1 },
	source: func(c hf.Config, top head, cpu bool) string {
		return encoderSource(c, top, cpu, bertArch{
			pos:         bertPositions{paddingIdx: mpnetPaddingIdx, fromIDs: true},
			layer:       mpnetLayerParams,
			noTokenType: true,
			relBias:     mpnetRelBias,
		})
	},
	noQuantized: "the quantized encoder has no relative position bias, and numbers positions from 0 as BERT does",
	paddingRows: func(hf.Config) map[string]int64 {
		return map[string]int64{"embeddings.word_embeddings.weight": mpnetPaddingIdx, "embeddings.position_embeddings.weight": mpnetPaddingIdx}
	},
}

const (
	mpnetPaddingIdx = 1
	// mpnetBuckets and mpnetMaxDistance are relative_position_bucket's
	// arguments as MPNetEncoder calls it (it passes no config value).
	mpnetBuckets     = 32
	mpnetMaxDistance = 128
	mpnetRelBias     = "encoder.relative_attention_bias.weight"
)

// mpnetLayerParams are MPNetLayer's weights in layerParams' roles.
var mpnetLayerParams = []string{
	"attention.attn.q.weight", "attention.attn.q.bias",
	"attention.attn.k.weight", "attention.attn.k.bias",
	"attention.attn.v.weight", "attention.attn.v.bias",
	"attention.attn.o.weight", "attention.attn.o.bias",
	"attention.LayerNorm.weight", "attention.LayerNorm.bias",
	"intermediate.dense.weight", "intermediate.dense.bias",
	"output.dense.weight", "output.dense.bias",
	"output.LayerNorm.weight", "output.LayerNorm.bias",
}

func validateMPNet(c hf.Config) error {
	switch {
	case c.HiddenAct != "gelu":
		return fmt.Errorf("hidden_act %q is not supported (want gelu)", c.HiddenAct)
	case c.IntermediateSize <= 0:
		return errors.New("intermediate_size must be positive")
	case c.LayerNormEps <= 0:
		return fmt.Errorf("layer_norm_eps %g must be positive", c.LayerNormEps)
	case c.RelativeAttentionNumBuckets != mpnetBuckets:
		return fmt.Errorf("relative_attention_num_buckets %d is not supported (MPNetModel buckets into %d)", c.RelativeAttentionNumBuckets, mpnetBuckets)
	case c.MaxPositionEmbeddings < mpnetPaddingIdx+2:
		return errors.New("max_position_embeddings must leave positions after padding_idx 1")
	}
	return nil
}

func mpnetShapes(c hf.Config) map[string][]int64 {
	h, i := int64(c.HiddenSize), int64(c.IntermediateSize)
	shapes := map[string][]int64{
		"embeddings.word_embeddings.weight":     {int64(c.VocabSize), h},
		"embeddings.position_embeddings.weight": {int64(c.MaxPositionEmbeddings), h},
		"embeddings.LayerNorm.weight":           {h},
		"embeddings.LayerNorm.bias":             {h},
		mpnetRelBias:                            {mpnetBuckets, int64(c.NumAttentionHeads)},
	}
	per := []([]int64){{h, h}, {h}, {h, h}, {h}, {h, h}, {h}, {h, h}, {h}, {h}, {h}, {i, h}, {i}, {h, i}, {h}, {h}, {h}}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for k, p := range mpnetLayerParams {
			shapes[fmt.Sprintf("encoder.layer.%d.%s", l, p)] = per[k]
		}
	}
	return shapes
}

func mpnetOrder(c hf.Config) []string {
	names := []string{
		"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
		"embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", mpnetRelBias,
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, p := range mpnetLayerParams {
			names = append(names, fmt.Sprintf("encoder.layer.%d.%s", l, p))
		}
	}
	return names
}

// writeRelativeBias writes position_bias(s, like) -> [1, heads, s, s]:
// MPNetEncoder.compute_position_bias for s positions, on like's device.
func writeRelativeBias(w func(string, ...any), c hf.Config, table string) {
	half := mpnetBuckets / 2
	exact := half / 2
	w("def position_bias(self, s: int, like: Tensor) -> Tensor:")
	w("    p = torch.arange(s, device=like.device)")
	w("    n = p.unsqueeze(1) - p.unsqueeze(0)") // -(memory - context)
	w("    ret = (n < 0).long() * %d", half)
	w("    n = torch.abs(n)")
	w("    large = %d + (torch.log(n.float() / %d) / %s * %d).long()", exact, exact,
		torch.ScriptFloat(math.Log(float64(mpnetMaxDistance)/float64(exact))), half-exact)
	w("    large = torch.clamp(large, max=%d)", half-1)
	w("    b = ret + torch.where(n < %d, n, large)", exact)
	w("    return torch.embedding(self.%s, b).permute([2, 0, 1]).unsqueeze(0)", jitName(table))
	w("")
}
