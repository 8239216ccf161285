package minilm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// qwen3 is Qwen3Model (model_type "qwen3": Qwen3-Embedding), a decoder:
// pre-norm layers with RMSNorm, rotary embeddings, grouped-query attention
// (num_key_value_heads) with RMSNorm on each head's queries and keys,
// causal attention, and a SwiGLU feed-forward; no biases. Its folders pool
// the last token. Checkpoints saved from Qwen3ForCausalLM carry a "model."
// prefix (lm_head is kept, unused, for export).
//
// The batch is right-padded (PadBatch) and positions count from 0 at the
// first column, which for causal attention and rotary embeddings gives what
// a left-padded batch gives up to float rounding (attention scores depend
// on position differences only).
var qwen3 = &family{
	name:         "qwen3",
	prefixes:     []string{"model."},
	validate:     validateQwen3,
	shapes:       qwen3Shapes,
	order:        qwen3Order,
	layerPrefix:  "layers.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings },
	source:       qwen3Source,
	normWeight:   func(name string) bool { return strings.HasSuffix(name, "norm.weight") },
	noQuantized:  "the quantized encoder is BERT's (post-norm, GELU, learned positions, bidirectional); Qwen3 is a causal decoder with RMSNorm, rotary embeddings and SwiGLU",
	paddingRows: func(c hf.Config) map[string]int64 {
		if c.PadTokenID == nil {
			return nil // Qwen3Config: pad_token_id None, no padding_idx
		}
		return map[string]int64{"embed_tokens.weight": padRow(c, 0)}
	},
}

// qwen3Theta is the rotary base: rope_parameters.rope_theta (transformers
// 5), else rope_theta.
func qwen3Theta(c hf.Config) (float64, error) {
	theta := c.RopeTheta
	if len(c.RopeParameters) > 0 {
		var rp struct {
			RopeType  string  `json:"rope_type"`
			RopeTheta float64 `json:"rope_theta"`
		}
		if err := json.Unmarshal(c.RopeParameters, &rp); err != nil {
			return 0, fmt.Errorf("rope_parameters: %w", err)
		}
		if rp.RopeType != "" && rp.RopeType != "default" {
			return 0, fmt.Errorf("rope_parameters.rope_type %q is not supported (want default)", rp.RopeType)
		}
		if rp.RopeTheta > 0 {
			theta = rp.RopeTheta
		}
	}
	if theta <= 0 {
		return 0, errors.New("rope_theta must be positive")
	}
	return theta, nil
}

func qwen3HeadDim(c hf.Config) int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	return c.HiddenSize / c.NumAttentionHeads
}

func validateQwen3(c hf.Config) error {
	switch {
	case c.HiddenAct != "silu":
		return fmt.Errorf("hidden_act %q is not supported (want silu)", c.HiddenAct)
	case c.AttentionBias:
		return errors.New("attention_bias must be false")
	case c.AttentionDropout != 0:
		return errors.New("attention_dropout must be 0 (Qwen3 trains without dropout)")
	case c.UseSlidingWindow:
		return errors.New("use_sliding_window is not supported (sliding-window attention in a decoder)")
	case c.NumKeyValueHeads <= 0 || c.NumAttentionHeads%c.NumKeyValueHeads != 0:
		return fmt.Errorf("num_key_value_heads %d must divide num_attention_heads %d", c.NumKeyValueHeads, c.NumAttentionHeads)
	case qwen3HeadDim(c)%2 != 0:
		return fmt.Errorf("head_dim %d must be even for rotary embeddings", qwen3HeadDim(c))
	case c.IntermediateSize <= 0:
		return errors.New("intermediate_size must be positive")
	case c.RMSNormEps <= 0:
		return fmt.Errorf("rms_norm_eps %g must be positive", c.RMSNormEps)
	}
	for i, t := range c.LayerTypes {
		if t != "full_attention" {
			return fmt.Errorf("layer_types[%d] %q is not supported (want full_attention)", i, t)
		}
	}
	_, err := qwen3Theta(c)
	return err
}

var qwen3LayerParams = []string{
	"input_layernorm.weight",
	"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
	"self_attn.q_norm.weight", "self_attn.k_norm.weight",
	"post_attention_layernorm.weight",
	"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
}

func qwen3Shapes(c hf.Config) map[string][]int64 {
	h, i := int64(c.HiddenSize), int64(c.IntermediateSize)
	hd := int64(qwen3HeadDim(c))
	q, kv := int64(c.NumAttentionHeads)*hd, int64(c.NumKeyValueHeads)*hd
	shapes := map[string][]int64{
		"embed_tokens.weight": {int64(c.VocabSize), h},
		"norm.weight":         {h},
	}
	per := [][]int64{{h}, {q, h}, {kv, h}, {kv, h}, {h, q}, {hd}, {hd}, {h}, {i, h}, {i, h}, {h, i}}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for k, p := range qwen3LayerParams {
			shapes[fmt.Sprintf("layers.%d.%s", l, p)] = per[k]
		}
	}
	return shapes
}

func qwen3Order(c hf.Config) []string {
	names := []string{"embed_tokens.weight"}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, p := range qwen3LayerParams {
			names = append(names, fmt.Sprintf("layers.%d.%s", l, p))
		}
	}
	return append(names, "norm.weight")
}

// qwen3Source writes the decoder as Qwen3Model with SDPA attention computes
// it, on the padded batch, then the head.
func qwen3Source(c hf.Config, top head, cpu bool) string {
	theta, _ := qwen3Theta(c) // validated at load
	h, heads, kvh := c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads
	hd := qwen3HeadDim(c)
	eps := torch.ScriptFloat(c.RMSNormEps)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	// Qwen3RMSNorm: in float32, then back to the input's type.
	w("def rms(self, x: Tensor, g: Tensor) -> Tensor:")
	w("    y = x.float()")
	w("    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + %s)", eps)
	w("    return g * y.to(x.dtype)")
	w("")
	writeRotary(w, hd)
	args := make([]string, len(qwen3LayerParams))
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
	w("    a = torch.scaled_dot_product_attention(q, k, v, mask)")
	w("    x = x + torch.linear(a.transpose(1, 2).reshape(b, s, %d), w4)", heads*hd)
	w("    y = self.rms(x, w7)")
	w("    f = torch.silu(torch.linear(y, w8)) * torch.linear(y, w9)")
	w("    return x + torch.linear(f, w10)")
	w("")
	w("def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    s = input_ids.size(1)")
	w("    x = torch.embedding(self.%s, input_ids)", jitName("embed_tokens.weight"))
	w("    pos = torch.arange(s, device=input_ids.device)")
	w("    causal = (pos.unsqueeze(0) <= pos.unsqueeze(1)).unsqueeze(0).unsqueeze(0)")
	// Each position also sees itself, so that a row is never empty.
	w("    eye = (pos.unsqueeze(0) == pos.unsqueeze(1)).unsqueeze(0).unsqueeze(0)")
	w("    mask = torch.logical_or(torch.logical_and(causal, (attention_mask > 0).unsqueeze(1).unsqueeze(2)), eye)")
	w("    cos, sin = self.rotary(s, %s, input_ids)", torch.ScriptFloat(theta))
	for l := 0; l < c.NumHiddenLayers; l++ {
		refs := make([]string, len(qwen3LayerParams))
		for i, p := range qwen3LayerParams {
			refs[i] = "self." + jitName(fmt.Sprintf("layers.%d.%s", l, p))
		}
		w("    x = self.layer(x, mask, cos, sin, %s)", strings.Join(refs, ", "))
	}
	w("    return self.rms(x, self.%s)", jitName("norm.weight"))
	w("")
	w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    x = self.token_embeddings(input_ids, attention_mask).float()")
	writeHead(w, h, top, false)
	return b.String() // cpu or not: no dropout, and the same stock operators

}
