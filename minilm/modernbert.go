package minilm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// modernBERT is ModernBertModel (model_type "modernbert": gte-modernbert,
// modernbert-embed): no position table but rotary embeddings on Q and K, a
// GeGLU feed-forward, pre-norm layers (layer 0 without its attention norm)
// and a final norm, no biases, and layers alternating between global
// attention and a sliding window (|i - j| <= local_attention/2) with their
// own rotary bases. Checkpoints saved from ModernBertForXxx carry a "model."
// prefix.
//
// Both modules run on the padded batch: the int8 encoder and the unpadded
// CPU path are BERT's. Biases (attention_bias, mlp_bias, norm_bias) are
// refused: no published ModernBERT sets them.
var modernBERT = &family{
	name:         "modernbert",
	prefixes:     []string{"model."},
	validate:     validateModernBERT,
	shapes:       modernBERTShapes,
	order:        modernBERTOrder,
	layerPrefix:  "layers.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings },
	source:       modernBERTSource,
	normWeight:   func(name string) bool { return strings.HasSuffix(name, "norm.weight") },
	noQuantized:  "the quantized encoder is BERT's (post-norm, GELU, learned positions); ModernBERT has rotary embeddings, GeGLU and pre-norm layers",
	paddingRows: func(c hf.Config) map[string]int64 {
		return map[string]int64{"embeddings.tok_embeddings.weight": padRow(c, 50283)}
	},
}

// modernBERTLayout is the attention layout a ModernBERT config describes.
type modernBERTLayout struct {
	sliding     []bool // per layer: sliding-window attention
	window      int    // |i - j| <= window
	globalTheta float64
	localTheta  float64
}

func modernBERTLayoutOf(c hf.Config) (modernBERTLayout, error) {
	l := modernBERTLayout{window: 64, globalTheta: 160000, localTheta: 10000}
	if c.LocalAttention > 0 {
		l.window = c.LocalAttention / 2
	}
	if c.GlobalRopeTheta > 0 {
		l.globalTheta = c.GlobalRopeTheta
	}
	if c.LocalRopeTheta > 0 {
		l.localTheta = c.LocalRopeTheta
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
	every := c.GlobalAttnEveryNLayers
	if every <= 0 {
		every = 3
	}
	l.sliding = make([]bool, c.NumHiddenLayers)
	for i := range l.sliding {
		l.sliding[i] = i%every != 0
	}
	if len(c.LayerTypes) > 0 {
		if len(c.LayerTypes) != c.NumHiddenLayers {
			return l, fmt.Errorf("layer_types has %d entries for %d layers", len(c.LayerTypes), c.NumHiddenLayers)
		}
		for i, t := range c.LayerTypes {
			switch t {
			case "full_attention":
				l.sliding[i] = false
			case "sliding_attention":
				l.sliding[i] = true
			default:
				return l, fmt.Errorf("layer_types[%d] %q is not supported (want full_attention or sliding_attention)", i, t)
			}
		}
	}
	if l.window < 1 {
		return l, errors.New("local_attention must be at least 2")
	}
	return l, nil
}

func validateModernBERT(c hf.Config) error {
	act := c.HiddenActivation
	switch {
	case act != "" && act != "gelu":
		return fmt.Errorf("hidden_activation %q is not supported (want gelu)", act)
	case c.NormBias || c.AttentionBias || c.MLPBias:
		return errors.New("norm_bias, attention_bias and mlp_bias must be false (ModernBERT without biases)")
	case c.IntermediateSize <= 0:
		return errors.New("intermediate_size must be positive")
	case c.NormEps <= 0:
		return fmt.Errorf("norm_eps %g must be positive", c.NormEps)
	case (c.HiddenSize/c.NumAttentionHeads)%2 != 0:
		return fmt.Errorf("head size %d must be even for rotary embeddings", c.HiddenSize/c.NumAttentionHeads)
	case c.EmbeddingDropout < 0 || c.EmbeddingDropout >= 1 || c.MLPDropout < 0 || c.MLPDropout >= 1 ||
		c.AttentionDropout < 0 || c.AttentionDropout >= 1:
		return errors.New("embedding_dropout, mlp_dropout and attention_dropout must be in [0, 1)")
	}
	_, err := modernBERTLayoutOf(c)
	return err
}

func modernBERTLayerParams(l int) []string {
	p := []string{"attn.Wqkv.weight", "attn.Wo.weight", "mlp_norm.weight", "mlp.Wi.weight", "mlp.Wo.weight"}
	if l > 0 {
		p = append([]string{"attn_norm.weight"}, p...)
	}
	for i := range p {
		p[i] = fmt.Sprintf("layers.%d.%s", l, p[i])
	}
	return p
}

func modernBERTShapes(c hf.Config) map[string][]int64 {
	h, i := int64(c.HiddenSize), int64(c.IntermediateSize)
	shapes := map[string][]int64{
		"embeddings.tok_embeddings.weight": {int64(c.VocabSize), h},
		"embeddings.norm.weight":           {h},
		"final_norm.weight":                {h},
	}
	per := map[string][]int64{
		"attn_norm.weight": {h}, "attn.Wqkv.weight": {3 * h, h}, "attn.Wo.weight": {h, h},
		"mlp_norm.weight": {h}, "mlp.Wi.weight": {2 * i, h}, "mlp.Wo.weight": {h, i},
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, name := range modernBERTLayerParams(l) {
			shapes[name] = per[name[strings.IndexByte(name[len("layers."):], '.')+len("layers.")+1:]]
		}
	}
	return shapes
}

func modernBERTOrder(c hf.Config) []string {
	names := []string{"embeddings.tok_embeddings.weight", "embeddings.norm.weight"}
	for l := 0; l < c.NumHiddenLayers; l++ {
		names = append(names, modernBERTLayerParams(l)...)
	}
	return append(names, "final_norm.weight")
}

// modernBERTSource writes the encoder as ModernBertModel computes it,
// unpadded: the embeddings, norms, projections and MLPs run on the real
// tokens only (the batch's padding is never computed), and attention on
// the padded layout with SDPA and the mask; then the head.
func modernBERTSource(c hf.Config, top head, cpu bool) string {
	layout, _ := modernBERTLayoutOf(c) // validated at load
	h, heads := c.HiddenSize, c.NumAttentionHeads
	hd := h / heads
	eps := torch.ScriptFloat(c.NormEps)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p := func(name string) string { return "self." + jitName(name) }

	w("def dropout(self, x: Tensor, p: float) -> Tensor:")
	if cpu {
		w("    if self.training and p > 0.0:")
		w("        return x * embtune.dropout_mask(x, p)")
		w("    return x")
	} else {
		w("    return torch.dropout(x, p, self.training)")
	}
	w("")
	w("def norm(self, x: Tensor, g: Tensor) -> Tensor:")
	w("    return torch.layer_norm(x, [%d], g, None, %s)", h, eps)
	w("")
	writeRotary(w, hd)
	// x is [T, hidden]: the batch's real tokens only (idx: their places in
	// the flattened [B·S] batch), as ModernBERT runs unpadded. The
	// projections, norms and MLP see only those rows; attention scatters
	// q, k and v back into the padded [B, S] layout for SDPA with the mask,
	// and gathers the real rows of its output again.
	w("def layer(self, x: Tensor, idx: Tensor, b: int, s: int, mask: Tensor, cos: Tensor, sin: Tensor, an: Optional[Tensor], wqkv: Tensor, wo: Tensor, mn: Tensor, wi: Tensor, wo2: Tensor) -> Tensor:")
	w("    y = x")
	w("    if an is not None:")
	w("        y = self.norm(x, an)")
	w("    t = torch.linear(y, wqkv)")
	w("    qkv = t.new_zeros([b * s, %d]).index_copy(0, idx, t).view(b, s, 3, %d, %d)", 3*h, heads, hd)
	w("    q = self.rope(qkv.select(2, 0).transpose(1, 2), cos, sin)")
	w("    k = self.rope(qkv.select(2, 1).transpose(1, 2), cos, sin)")
	w("    v = qkv.select(2, 2).transpose(1, 2)")
	w("    p = 0.0")
	w("    if self.training:")
	w("        p = %s", torch.ScriptFloat(c.AttentionDropout))
	w("    a = torch.scaled_dot_product_attention(q, k, v, mask, p)")
	w("    a = a.transpose(1, 2).reshape(b * s, %d).index_select(0, idx)", h)
	w("    x = x + self.dropout(torch.linear(a, wo), %s)", torch.ScriptFloat(c.AttentionDropout))
	w("    g = torch.linear(self.norm(x, mn), wi)")
	w("    f = torch.gelu(g[:, :%d]) * g[:, %d:]", c.IntermediateSize, c.IntermediateSize)
	w("    return x + torch.linear(self.dropout(f, %s), wo2)", torch.ScriptFloat(c.MLPDropout))
	w("")
	w("def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    b = input_ids.size(0)")
	w("    s = input_ids.size(1)")
	w("    idx = (attention_mask.reshape(-1) > 0).nonzero().squeeze(1)")
	w("    x = self.dropout(self.norm(torch.embedding(%s, input_ids.reshape(-1).index_select(0, idx)), %s), %s)",
		p("embeddings.tok_embeddings.weight"), p("embeddings.norm.weight"), torch.ScriptFloat(c.EmbeddingDropout))
	w("    keys = (attention_mask > 0).unsqueeze(1).unsqueeze(2)")
	w("    full = keys")
	// Each position also sees itself, so that a padding query far from
	// every real token has a non-empty row (its output is never pooled).
	w("    pos = torch.arange(s, device=input_ids.device)")
	w("    d = torch.abs(pos.unsqueeze(1) - pos.unsqueeze(0))")
	w("    near = (d <= %d).unsqueeze(0).unsqueeze(0)", layout.window)
	w("    eye = (d == 0).unsqueeze(0).unsqueeze(0)")
	w("    sliding = torch.logical_or(torch.logical_and(keys, near), eye)")
	w("    gcos, gsin = self.rotary(s, %s, input_ids)", torch.ScriptFloat(layout.globalTheta))
	w("    lcos, lsin = self.rotary(s, %s, input_ids)", torch.ScriptFloat(layout.localTheta))
	for l := 0; l < c.NumHiddenLayers; l++ {
		names := modernBERTLayerParams(l)
		an := "None"
		if l > 0 {
			an, names = p(names[0]), names[1:]
		}
		refs := make([]string, len(names))
		for i, n := range names {
			refs[i] = p(n)
		}
		mask, rot := "full", "gcos, gsin"
		if layout.sliding[l] {
			mask, rot = "sliding", "lcos, lsin"
		}
		w("    x = self.layer(x, idx, b, s, %s, %s, %s, %s)", mask, rot, an, strings.Join(refs, ", "))
	}
	// Padding positions come back as zeros, as ModernBertModel's unpadded
	// output is padded again.
	w("    x = self.norm(x, %s)", p("final_norm.weight"))
	w("    return x.new_zeros([b * s, %d]).index_copy(0, idx, x).view(b, s, %d)", h, h)
	w("")
	w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    x = self.token_embeddings(input_ids, attention_mask).float()")
	writeHead(w, h, top, false)
	return b.String()
}

// writeRotary writes rotary(s, theta, like) -> (cos, sin) [S, hd], the
// default rotary embedding of transformers (inv_freq = theta^(-2i/hd),
// cos and sin of positions 0..s-1 times it, concatenated twice), and
// rope(x, cos, sin), apply_rotary_pos_emb with rotate_half on [B, H, S, hd].
func writeRotary(w func(string, ...any), hd int) {
	w("def rotary(self, s: int, theta: float, like: Tensor) -> Tuple[Tensor, Tensor]:")
	w("    inv = 1.0 / torch.pow(theta, torch.arange(0, %d, 2, device=like.device).float() / %d)", hd, hd)
	w("    f = torch.arange(s, device=like.device).float().unsqueeze(1) * inv.unsqueeze(0)")
	w("    e = torch.cat([f, f], -1)")
	w("    return torch.cos(e), torch.sin(e)")
	w("")
	w("def rope(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:")
	w("    r = torch.cat([-x[:, :, :, %d:], x[:, :, :, :%d]], -1)", hd/2, hd/2)
	w("    return x * cos + r * sin")
	w("")
}
