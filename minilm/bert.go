package minilm

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// bert is BertModel (model_type "bert"): learned absolute positions from 0,
// token type 0, post-norm layers with GELU. Checkpoints saved from
// BertForXxx carry a "bert." prefix. Its int8 form is buildQuantized
// (quantized.go).
var bert = &family{
	name:         "bert",
	prefixes:     []string{"bert."},
	validate:     validateBERT,
	shapes:       paramShapes,
	order:        paramOrder,
	layerPrefix:  "encoder.layer.",
	maxPositions: func(c hf.Config) int { return c.MaxPositionEmbeddings },
	source: func(c hf.Config, top head, cpu bool) string {
		return encoderSource(c, top, cpu, bertArch{})
	},
	quantized:       (*Model).buildQuantized,
	columnPositions: true,
	paddingRows: func(c hf.Config) map[string]int64 {
		return map[string]int64{"embeddings.word_embeddings.weight": padRow(c, 0)}
	},
}

// validateBERT checks the config.json fields BertModel reads beyond the
// sizes every family shares (hf.Config.Validate).
func validateBERT(c hf.Config) error {
	switch {
	case c.HiddenAct != "gelu":
		return fmt.Errorf("hidden_act %q is not supported (want gelu)", c.HiddenAct)
	case c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute":
		return fmt.Errorf("position_embedding_type %q is not supported (want absolute)", c.PositionEmbeddingType)
	case c.TypeVocabSize <= 0:
		return errors.New("type_vocab_size must be positive")
	case c.IntermediateSize <= 0:
		return errors.New("intermediate_size must be positive")
	case c.LayerNormEps <= 0:
		return fmt.Errorf("layer_norm_eps %g must be positive", c.LayerNormEps)
	}
	return nil
}

// bertPositions says how a BERT-shaped embedding numbers positions.
type bertPositions struct {
	// paddingIdx, when fromIDs, is the position of padding tokens, and
	// padding is found as input_ids == paddingIdx (RoBERTa's
	// create_position_ids_from_input_ids); otherwise positions are the
	// column index.
	paddingIdx int
	fromIDs    bool
}

// writePackedEmbed writes the line of a packed method that embeds the real
// tokens idx (flat indexes into input_ids [b, s]) into x, with positions
// numbered as p says.
func (p bertPositions) writePackedEmbed(w func(format string, args ...any)) {
	if p.fromIDs {
		w("    pm = (input_ids != %d).long()", p.paddingIdx)
		w("    positions = (torch.cumsum(pm, 1) * pm + %d).reshape(-1).index_select(0, idx)", p.paddingIdx)
		w("    x = self.embed(input_ids.reshape(-1).index_select(0, idx), positions)")
		return
	}
	w("    x = self.embed(input_ids.reshape(-1).index_select(0, idx), torch.remainder(idx, s))")
}

// bertArch is what a BERT-shaped family changes in encoderSource; the zero
// value is BERT.
type bertArch struct {
	pos bertPositions
	// layer names the per-layer weights in layerParams' roles (nil: BERT's).
	layer []string
	// noTokenType: the embeddings have no token type table (MPNet).
	noTokenType bool
	// relBias is the Hugging Face name of MPNet's relative position bias
	// table [buckets, heads], added to every layer's attention scores; ""
	// for none.
	relBias string
}

func (a bertArch) layerParams() []string {
	if a.layer != nil {
		return a.layer
	}
	return layerParams
}

// layerParams are the per-layer weights, in the order the layer method takes them.
var layerParams = []string{
	"attention.self.query.weight", "attention.self.query.bias",
	"attention.self.key.weight", "attention.self.key.bias",
	"attention.self.value.weight", "attention.self.value.bias",
	"attention.output.dense.weight", "attention.output.dense.bias",
	"attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
	"intermediate.dense.weight", "intermediate.dense.bias",
	"output.dense.weight", "output.dense.bias",
	"output.LayerNorm.weight", "output.LayerNorm.bias",
}

// paramShapes lists every trainable encoder weight with its expected shape.
func paramShapes(c hf.Config) map[string][]int64 {
	h, i := int64(c.HiddenSize), int64(c.IntermediateSize)
	shapes := map[string][]int64{
		"embeddings.word_embeddings.weight":       {int64(c.VocabSize), h},
		"embeddings.position_embeddings.weight":   {int64(c.MaxPositionEmbeddings), h},
		"embeddings.token_type_embeddings.weight": {int64(c.TypeVocabSize), h},
		"embeddings.LayerNorm.weight":             {h},
		"embeddings.LayerNorm.bias":               {h},
	}
	per := map[string][]int64{
		"attention.self.query.weight": {h, h}, "attention.self.query.bias": {h},
		"attention.self.key.weight": {h, h}, "attention.self.key.bias": {h},
		"attention.self.value.weight": {h, h}, "attention.self.value.bias": {h},
		"attention.output.dense.weight": {h, h}, "attention.output.dense.bias": {h},
		"attention.output.LayerNorm.weight": {h}, "attention.output.LayerNorm.bias": {h},
		"intermediate.dense.weight": {i, h}, "intermediate.dense.bias": {i},
		"output.dense.weight": {h, i}, "output.dense.bias": {h},
		"output.LayerNorm.weight": {h}, "output.LayerNorm.bias": {h},
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for k, s := range per {
			shapes[fmt.Sprintf("encoder.layer.%d.%s", l, k)] = s
		}
	}
	return shapes
}

// paramOrder is the registration order: embeddings, then layer by layer.
func paramOrder(c hf.Config) []string {
	names := []string{
		"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
		"embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, p := range layerParams {
			names = append(names, fmt.Sprintf("encoder.layer.%d.%s", l, p))
		}
	}
	return names
}

// encoderSource returns the TorchScript methods of the BERT encoder:
//
//	token_embeddings(input_ids, attention_mask) -> [B, S, H]  (BertModel's last_hidden_state)
//	forward(input_ids, attention_mask)          -> [B, D]     (the head: pooling, Dense, Normalize; see writeHead)
//
// Batch and sequence length are dynamic. Dropout follows self.training, so
// Module.Train switches it on for fine-tuning. Constants are baked in from
// the config because TorchScript's define() resolver has no math module and
// no dtype constants.
//
// cpu selects the CPU module, which differs in two ways that change no
// result beyond float rounding and the dropout random stream:
//   - Dropout masks come from embtune.dropout_mask (see torch/ops.cpp), and in
//     training attention is computed explicitly so its probabilities can take
//     that mask.
//   - Tokens are unpadded: every linear layer, LayerNorm, GELU and dropout
//     runs on the [T, H] matrix of the batch's real tokens, and only
//     attention scatters them back to [B, S]. A training batch pads its
//     shorter texts to its longest; on the Debian FAQ a third of the
//     positions in a batch of 32 questions and answers are padding.
//     token_embeddings then has zeros at padding positions.
//
// Without cpu the source uses only stock operators (torch.dropout and SDPA's
// dropout_p) on padded batches, so a saved archive loads in any libtorch or
// PyTorch and the CUDA module never synchronises on nonzero().
//
// pos numbers the positions: BERT's column index, or RoBERTa's count of
// non-padding tokens offset by padding_idx.
func encoderSource(c hf.Config, top head, cpu bool, arch bertArch) string {
	pos := arch.pos
	layerParams := arch.layerParams()
	h := c.HiddenSize
	heads := c.NumAttentionHeads
	hd := h / heads
	eps := torch.ScriptFloat(c.LayerNormEps)
	hdrop := torch.ScriptFloat(c.HiddenDropoutProb)
	adrop := torch.ScriptFloat(c.AttentionProbsDropoutProb)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	// ids is [B, S] with positions [S], or the unpadded [T] with positions [T].
	w("def embed(self, ids: Tensor, positions: Tensor) -> Tensor:")
	w("    x = torch.embedding(self.%s, ids)", jitName("embeddings.word_embeddings.weight"))
	w("    x = x + torch.embedding(self.%s, positions)", jitName("embeddings.position_embeddings.weight"))
	if !arch.noTokenType {
		w("    x = x + self.%s[0]", jitName("embeddings.token_type_embeddings.weight"))
	}
	w("    x = torch.layer_norm(x, [%d], self.%s, self.%s, %s)", h,
		jitName("embeddings.LayerNorm.weight"), jitName("embeddings.LayerNorm.bias"), eps)
	w("    return self.dropout(x, %s)", hdrop)
	w("")

	w("def dropout(self, x: Tensor, p: float) -> Tensor:")
	if cpu {
		w("    if self.training and p > 0.0:")
		w("        return x * embtune.dropout_mask(x, p)")
		w("    return x")
	} else {
		w("    return torch.dropout(x, p, self.training)")
	}
	w("")

	args := make([]string, len(layerParams))
	for i := range layerParams {
		args[i] = fmt.Sprintf("w%d: Tensor", i)
	}
	if cpu {
		// x is [T, H]; idx holds each real token's position in the flat [B*S].
		// Q, K and V come from one GEMM and are scattered back in one copy.
		w("def layer(self, x: Tensor, idx: Tensor, b: int, s: int, mask: Tensor, %s) -> Tensor:", strings.Join(args, ", "))
		w("    qkv = torch.linear(x, torch.cat([w0, w2, w4]), torch.cat([w1, w3, w5]))")
		w("    qkv = qkv.new_zeros([b * s, %d]).index_copy(0, idx, qkv)", 3*h)
		w("    qkv = qkv.view(b, s, 3, %d, %d).permute(2, 0, 3, 1, 4)", heads, hd)
		w("    q = qkv[0]")
		w("    k = qkv[1]")
		w("    v = qkv[2]")
	} else {
		w("def layer(self, x: Tensor, mask: Tensor, %s) -> Tensor:", strings.Join(args, ", "))
		w("    b = x.size(0)")
		w("    s = x.size(1)")
		w("    q = torch.linear(x, w0, w1).view(b, s, %d, %d).transpose(1, 2)", heads, hd)
		w("    k = torch.linear(x, w2, w3).view(b, s, %d, %d).transpose(1, 2)", heads, hd)
		w("    v = torch.linear(x, w4, w5).view(b, s, %d, %d).transpose(1, 2)", heads, hd)
	}
	if cpu && c.AttentionProbsDropoutProb > 0 {
		// What SDPA's math backend does with dropout_p, with our mask.
		w("    if self.training:")
		w("        scores = torch.matmul(q, k.transpose(-1, -2)) * %s", torch.ScriptFloat(1/math.Sqrt(float64(hd))))
		if arch.relBias != "" {
			w("        scores = scores + mask")
		} else {
			w("        scores = scores.masked_fill(mask.logical_not(), float(\"-inf\"))")
		}
		w("        a = torch.matmul(self.dropout(torch.softmax(scores, -1), %s), v)", adrop)
		w("    else:")
		w("        a = torch.scaled_dot_product_attention(q, k, v, mask)")
	} else {
		w("    p = 0.0")
		w("    if self.training:")
		w("        p = %s", adrop)
		w("    a = torch.scaled_dot_product_attention(q, k, v, mask, p)")
	}
	if cpu {
		w("    a = a.transpose(1, 2).reshape(b * s, %d).index_select(0, idx)", h)
	} else {
		w("    a = a.transpose(1, 2).reshape(b, s, %d)", h)
	}
	w("    a = self.dropout(torch.linear(a, w6, w7), %s)", hdrop)
	w("    x = torch.layer_norm(a + x, [%d], w8, w9, %s)", h, eps)
	w("    f = torch.gelu(torch.linear(x, w10, w11))")
	w("    f = self.dropout(torch.linear(f, w12, w13), %s)", hdrop)
	w("    return torch.layer_norm(f + x, [%d], w14, w15, %s)", h, eps)
	w("")

	layers := func(call string) {
		for l := 0; l < c.NumHiddenLayers; l++ {
			refs := make([]string, len(layerParams))
			for i, p := range layerParams {
				refs[i] = "self." + jitName(fmt.Sprintf("encoder.layer.%d.%s", l, p))
			}
			w("    x = self.layer(x, %s, %s)", call, strings.Join(refs, ", "))
		}
	}
	mask := "    mask = (attention_mask > 0).unsqueeze(1).unsqueeze(2)"
	if arch.relBias != "" {
		// The bias as a float mask: SDPA adds it to the scores.
		mask += "\n    mask = self.position_bias(input_ids.size(1), input_ids).masked_fill(mask.logical_not(), float(\"-inf\"))"
		writeRelativeBias(w, c, arch.relBias)
	}
	if cpu {
		// The unpadded tokens [T, H] and their flat positions idx [T].
		w("def packed(self, input_ids: Tensor, attention_mask: Tensor, idx: Tensor) -> Tensor:")
		w("    b = input_ids.size(0)")
		w("    s = input_ids.size(1)")
		w(mask)
		pos.writePackedEmbed(w)
		layers("idx, b, s, mask")
		w("    return x")
		w("")
		w("def real_tokens(self, attention_mask: Tensor) -> Tensor:")
		w("    return (attention_mask.reshape(-1) > 0).nonzero().squeeze(1)")
		w("")
		w("def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
		w("    idx = self.real_tokens(attention_mask)")
		w("    x = self.packed(input_ids, attention_mask, idx)")
		w("    b = input_ids.size(0)")
		w("    s = input_ids.size(1)")
		w("    return x.new_zeros([b * s, %d]).index_copy(0, idx, x).view(b, s, %d)", h, h)
		w("")
		// Pooling runs in float32 even under autocast, as sentence-transformers does.
		w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
		w("    idx = self.real_tokens(attention_mask)")
		w("    x = self.packed(input_ids, attention_mask, idx).float()")
	} else {
		w("def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
		w(mask)
		if pos.fromIDs {
			w("    pm = (input_ids != %d).long()", pos.paddingIdx)
			w("    x = self.embed(input_ids, torch.cumsum(pm, 1) * pm + %d)", pos.paddingIdx)
		} else {
			w("    x = self.embed(input_ids, torch.arange(input_ids.size(1), device=input_ids.device))")
		}
		layers("mask")
		w("    return x")
		w("")
		// Pooling runs in float32 even under autocast, as sentence-transformers does.
		w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
		w("    x = self.token_embeddings(input_ids, attention_mask).float()")
	}
	writeHead(w, h, top, cpu)
	return b.String()
}
