package minilm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// gemma3 is Gemma3TextModel (model_type "gemma3_text": EmbeddingGemma), a
// decoder: token embeddings scaled by sqrt(hidden_size); layers with
// Gemma's RMSNorm (x * (1 + w)) before and after both attention and the
// feed-forward; grouped-query attention with RMSNorm on each head's queries
// and keys, scaled by query_pre_attn_scalar^-0.5; rotary embeddings with
// their own base per layer type; layers alternating full and sliding-window
// attention; a GeGLU feed-forward (tanh GELU); no biases. Attention is
// causal, or bidirectional when use_bidirectional_attention (EmbeddingGemma),
// where a sliding layer sees tokens within sliding_window/2 either side.
var gemma3 = &family{
	name:         "gemma3_text",
	prefixes:     []string{"model."},
	validate:     validateGemma3,
	shapes:       gemma3Shapes,
	order:        gemma3Order,
	layerPrefix:  "layers.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings },
	source:       gemma3Source,
	normWeight:   func(name string) bool { return strings.HasSuffix(name, "norm.weight") },
	noQuantized:  "the quantized encoder is BERT's (post-norm, GELU, learned positions); Gemma 3 is a decoder with sandwich RMSNorms, rotary embeddings and GeGLU",
	paddingRows: func(c hf.Config) map[string]int64 {
		return map[string]int64{"embed_tokens.weight": padRow(c, 0)}
	},
}

// gemma3Layout is what a Gemma3TextConfig says about attention.
type gemma3Layout struct {
	sliding     []bool
	globalTheta float64
	localTheta  float64
	window      int // sliding layers see |i - j| < window (bidirectional) or i - window < j <= i
}

func gemma3LayoutOf(c hf.Config) (gemma3Layout, error) {
	l := gemma3Layout{globalTheta: 1000000, localTheta: 10000}
	if c.RopeTheta > 0 {
		l.globalTheta = c.RopeTheta
	}
	if c.RopeLocalBaseFreq > 0 {
		l.localTheta = c.RopeLocalBaseFreq
	}
	if len(c.RopeScaling) > 0 && string(c.RopeScaling) != "null" {
		return l, errors.New("rope_scaling is not supported")
	}
	if len(c.RopeParameters) > 0 {
		var rp map[string]struct {
			RopeType  string  `json:"rope_type"`
			RopeTheta float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(c.RopeParameters, &rp); err != nil {
			return l, fmt.Errorf("rope_parameters: want one entry per attention type: %w", err)
		}
		for kind, p := range rp {
			if p.RopeType != "" && p.RopeType != "default" {
				return l, fmt.Errorf("rope_parameters.%s.rope_type %q is not supported (want default)", kind, p.RopeType)
			}
			switch {
			case kind == "full_attention" && p.RopeTheta > 0:
				l.globalTheta = p.RopeTheta
			case kind == "sliding_attention" && p.RopeTheta > 0:
				l.localTheta = p.RopeTheta
			}
		}
	}
	if len(c.LayerTypes) != c.NumHiddenLayers {
		return l, fmt.Errorf("layer_types has %d entries for %d layers", len(c.LayerTypes), c.NumHiddenLayers)
	}
	l.sliding = make([]bool, c.NumHiddenLayers)
	for i, t := range c.LayerTypes {
		switch t {
		case "full_attention":
		case "sliding_attention":
			l.sliding[i] = true
		default:
			return l, fmt.Errorf("layer_types[%d] %q is not supported (want full_attention or sliding_attention)", i, t)
		}
	}
	if c.SlidingWindow == nil || *c.SlidingWindow < 1 {
		return l, errors.New("sliding_window must be positive")
	}
	l.window = *c.SlidingWindow
	if c.UseBidirectionalAttention {
		// Gemma3TextConfig keeps sliding_window // 2 + 1 as an exclusive bound.
		l.window = l.window/2 + 1
	}
	return l, nil
}

func validateGemma3(c hf.Config) error {
	switch {
	case c.HiddenActivation != "gelu_pytorch_tanh":
		return fmt.Errorf("hidden_activation %q is not supported (want gelu_pytorch_tanh)", c.HiddenActivation)
	case c.AttentionBias:
		return errors.New("attention_bias must be false")
	case c.AttentionDropout != 0:
		return errors.New("attention_dropout must be 0")
	case c.AttnLogitSoftcapping != nil:
		return errors.New("attn_logit_softcapping is not supported")
	case c.NumKeyValueHeads <= 0 || c.NumAttentionHeads%c.NumKeyValueHeads != 0:
		return fmt.Errorf("num_key_value_heads %d must divide num_attention_heads %d", c.NumKeyValueHeads, c.NumAttentionHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("head_dim %d must be positive and even", c.HeadDim)
	case c.QueryPreAttnScalar <= 0:
		return errors.New("query_pre_attn_scalar must be positive")
	case c.IntermediateSize <= 0:
		return errors.New("intermediate_size must be positive")
	case c.RMSNormEps <= 0:
		return fmt.Errorf("rms_norm_eps %g must be positive", c.RMSNormEps)
	}
	_, err := gemma3LayoutOf(c)
	return err
}

var gemma3LayerParams = []string{
	"input_layernorm.weight",
	"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
	"self_attn.q_norm.weight", "self_attn.k_norm.weight",
	"post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
	"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
	"post_feedforward_layernorm.weight",
}

func gemma3Shapes(c hf.Config) map[string][]int64 {
	h, i, hd := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.HeadDim)
	q, kv := int64(c.NumAttentionHeads)*hd, int64(c.NumKeyValueHeads)*hd
	shapes := map[string][]int64{
		"embed_tokens.weight": {int64(c.VocabSize), h},
		"norm.weight":         {h},
	}
	per := [][]int64{{h}, {q, h}, {kv, h}, {kv, h}, {h, q}, {hd}, {hd}, {h}, {h}, {i, h}, {i, h}, {h, i}, {h}}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for k, p := range gemma3LayerParams {
			shapes[fmt.Sprintf("layers.%d.%s", l, p)] = per[k]
		}
	}
	return shapes
}

func gemma3Order(c hf.Config) []string {
	names := []string{"embed_tokens.weight"}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, p := range gemma3LayerParams {
			names = append(names, fmt.Sprintf("layers.%d.%s", l, p))
		}
	}
	return append(names, "norm.weight")
}

// gemma3Source writes the decoder as Gemma3TextModel with SDPA attention
// computes it, on the padded batch, then the head.
func gemma3Source(c hf.Config, top head, cpu bool) string {
	layout, _ := gemma3LayoutOf(c) // validated at load
	h, heads, kvh, hd := c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	// Gemma3RMSNorm: in float32, times (1 + w), back to the input's type.
	w("def rms(self, x: Tensor, g: Tensor) -> Tensor:")
	w("    y = x.float()")
	w("    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + %s)", torch.ScriptFloat(c.RMSNormEps))
	w("    return (y * (1.0 + g.float())).to(x.dtype)")
	w("")
	writeRotary(w, hd)
	args := make([]string, len(gemma3LayerParams))
	for i := range args {
		args[i] = fmt.Sprintf("w%d: Tensor", i)
	}
	w("def layer(self, x: Tensor, mask: Tensor, cos: Tensor, sin: Tensor, %s) -> Tensor:", strings.Join(args, ", "))
	w("    b = x.size(0)")
	w("    s = x.size(1)")
	w("    y = self.rms(x, w0)")
	w("    q = self.rope(self.rms(torch.linear(y, w1).view(b, s, %d, %d), w5).transpose(1, 2), cos, sin)", heads, hd)
	w("    k = self.rope(self.rms(torch.linear(y, w2).view(b, s, %d, %d), w6).transpose(1, 2), cos, sin)", kvh, hd)
	w("    v = torch.linear(y, w3).view(b, s, %d, %d).transpose(1, 2)", kvh, hd)
	if heads != kvh {
		w("    k = k.repeat_interleave(%d, 1)", heads/kvh)
		w("    v = v.repeat_interleave(%d, 1)", heads/kvh)
	}
	w("    a = torch.scaled_dot_product_attention(q, k, v, mask, 0.0, False, scale=%s)",
		torch.ScriptFloat(math.Pow(c.QueryPreAttnScalar, -0.5)))
	w("    x = x + self.rms(torch.linear(a.transpose(1, 2).reshape(b, s, %d), w4), w7)", heads*hd)
	w("    y = self.rms(x, w8)")
	w("    f = torch.gelu(torch.linear(y, w9), approximate=\"tanh\") * torch.linear(y, w10)")
	w("    return x + self.rms(torch.linear(f, w11), w12)")
	w("")
	w("def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    s = input_ids.size(1)")
	// Gemma3TextScaledWordEmbedding: the scale is a float32 tensor.
	w("    x = torch.embedding(self.%s, input_ids) * %s", jitName("embed_tokens.weight"),
		torch.ScriptFloat(float64(float32(math.Sqrt(float64(h))))))
	w("    pos = torch.arange(s, device=input_ids.device)")
	w("    keys = (attention_mask > 0).unsqueeze(1).unsqueeze(2)")
	// Each position also sees itself, so that a row is never empty.
	w("    eye = (pos.unsqueeze(0) == pos.unsqueeze(1)).unsqueeze(0).unsqueeze(0)")
	w("    d = pos.unsqueeze(0) - pos.unsqueeze(1)") // j - i
	if c.UseBidirectionalAttention {
		w("    full = keys")
		w("    near = (torch.abs(d) < %d).unsqueeze(0).unsqueeze(0)", layout.window)
	} else {
		w("    causal = (d <= 0).unsqueeze(0).unsqueeze(0)")
		w("    full = torch.logical_or(torch.logical_and(keys, causal), eye)")
		w("    near = torch.logical_and(causal, (d > -%d).unsqueeze(0).unsqueeze(0))", layout.window)
	}
	w("    sliding = torch.logical_or(torch.logical_and(keys, near), eye)")
	w("    gcos, gsin = self.rotary(s, %s, input_ids)", torch.ScriptFloat(layout.globalTheta))
	w("    lcos, lsin = self.rotary(s, %s, input_ids)", torch.ScriptFloat(layout.localTheta))
	for l := 0; l < c.NumHiddenLayers; l++ {
		refs := make([]string, len(gemma3LayerParams))
		for i, p := range gemma3LayerParams {
			refs[i] = "self." + jitName(fmt.Sprintf("layers.%d.%s", l, p))
		}
		mask, rot := "full", "gcos, gsin"
		if layout.sliding[l] {
			mask, rot = "sliding", "lcos, lsin"
		}
		w("    x = self.layer(x, %s, %s, %s)", mask, rot, strings.Join(refs, ", "))
	}
	w("    return self.rms(x, self.%s)", jitName("norm.weight"))
	w("")
	w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    x = self.token_embeddings(input_ids, attention_mask).float()")
	writeHead(w, h, top, false)
	return b.String() // cpu or not: no dropout, and the same stock operators
}
