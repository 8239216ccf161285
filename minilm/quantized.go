package minilm

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// Quantization returns the precision of the model's Linear layers.
func (m *Model) Quantization() Quantization { return m.quant }

// Quantization is the precision of the encoder's Linear layers on the CPU
// (--quantize). Embeddings, LayerNorm, attention and pooling stay float32,
// and tokens stay unpadded. Weights are quantized at load from the float32
// safetensors, so no second artifact exists; a quantized model encodes only
// (it cannot be trained or exported).
type Quantization string

const (
	// NoQuantization is the float32 encoder, the default.
	NoQuantization Quantization = ""
	// Int8 is dynamic int8 (torch.ao.nn.quantized.dynamic.Linear's maths,
	// per_channel_dynamic_qconfig): symmetric int8 weights with one scale per
	// output row, activations quantized to the full 8 bits
	// (reduce_range=False, as ONNX Runtime's quantize_dynamic does), through
	// embtune.linear_int8 (torch/encoder_ops.cpp; engine: see engine).
	// The activation scale is per token, so a text's vector does not
	// depend on the texts batched with it. Q, K and V run as one
	// GEMM. The inputs of the QKV and FFN-up GEMMs are smoothed
	// (SmoothQuant, quantized_smooth.go): worst cosine to fp32 over the
	// golden texts 0.983, against 0.971 without (Int8NoSmooth).
	// reduce_range=True (7-bit activations, Int8ReduceRange) lowered it to
	// 0.914.
	Int8 Quantization = "int8"
	// Int8NoSmooth is Int8 without smoothing, kept for the measurements in
	// the README.
	Int8NoSmooth Quantization = "int8-no-smooth"
	// Int8ReduceRange is Int8NoSmooth with activations quantized to 7 bits
	// (reduce_range=True, as torch.ao.nn.quantized.dynamic.Linear passes it
	// for fbgemm's AVX2 kernels), kept for the measurements in the README.
	Int8ReduceRange Quantization = "int8-reduce-range"
	// Int8Mixed is Int8ReduceRange with the FFN's output projection in fp16.
	Int8Mixed Quantization = "int8-mixed"
	// Int8PerTensor is Int8NoSmooth with one weight scale per matrix
	// (default_dynamic_qconfig), kept for the measurements in the README.
	Int8PerTensor Quantization = "int8-per-tensor"
	// Int8Unfused is Int8NoSmooth with Q, K and V as three GEMMs, kept for the
	// measurements in the README.
	Int8Unfused Quantization = "int8-unfused"
	// Float16Weights keeps fp16 weights (quantized::linear_dynamic_fp16).
	Float16Weights Quantization = "fp16"
)

// Quantizations lists the values ParseQuantization accepts, "none" first.
var Quantizations = []Quantization{"none", Int8, Int8NoSmooth, Int8ReduceRange, Int8Mixed, Int8PerTensor, Int8Unfused, Float16Weights}

// engine is the libtorch quantized engine that prepacks q's weights, where
// fbgemm's int8 kernels are VNNI (vnni) or not.
//
// Full-range activations (reduce_range=False) need kernels that accumulate
// u8×s8 products in int32. fbgemm's VNNI kernels do, and at one short query
// they ran 1.5 ms against oneDNN's 2.0 ms (per-call primitive set-up), at
// the same 260 sentences/s for batches of 32, on an AVX-512 VNNI Xeon.
// fbgemm's AVX2 and AVX-512 kernels add product pairs in int16 and saturate,
// so there the full-range variants take oneDNN. The reduce_range variants
// (7-bit activations, no saturation) are torch.ao's fbgemm set-up.
func (q Quantization) engine(vnni bool) string {
	switch q {
	case Int8ReduceRange, Int8Mixed, Float16Weights:
		return "fbgemm"
	}
	if vnni {
		return "fbgemm"
	}
	return "onednn"
}

// fbgemmVNNI says whether fbgemm's int8 kernels on this CPU are VNNI ones.
var fbgemmVNNI = sync.OnceValue(func() bool {
	isa, err := torch.FbgemmISA()
	return err == nil && strings.HasPrefix(isa, "avx512_vnni")
})

// QuantizedEngine is the libtorch engine that runs q's Linear layers on
// this CPU ("" for NoQuantization).
func QuantizedEngine(q Quantization) string {
	if q == NoQuantization {
		return ""
	}
	return q.engine(fbgemmVNNI())
}

// ParseQuantization reads a --quantize value; "" and "none" mean float32.
func ParseQuantization(s string) (Quantization, error) {
	if s == "" || s == "none" {
		return NoQuantization, nil
	}
	for _, q := range Quantizations[1:] {
		if string(q) == s {
			return q, nil
		}
	}
	names := make([]string, len(Quantizations))
	for i, q := range Quantizations {
		names[i] = string(q)
	}
	return "", fmt.Errorf("unknown quantization %q: want one of %s", s, strings.Join(names, ", "))
}

// packingOf is how the Linear layer attr is packed: Int8Mixed keeps the FFN's
// output projection, whose GELU inputs carry the outliers, in fp16.
func (q Quantization) packingOf(attr string) torch.PackedLinear {
	if q == Int8Mixed && strings.HasSuffix(attr, "__output__dense") && !strings.Contains(attr, "attention") {
		return torch.Float16Weights
	}
	return q.packing()
}

func (q Quantization) packing() torch.PackedLinear {
	switch q {
	case Int8PerTensor:
		return torch.Int8PerTensor
	case Float16Weights:
		return torch.Float16Weights
	}
	return torch.Int8PerChannel
}

func (q Quantization) fusedQKV() bool { return q != Int8Unfused }

// smoothed says whether the LayerNorm-fed inputs are smoothed (smoothingSource).
func (q Quantization) smoothed() bool { return q == Int8 }

// checkQuantization refuses what the quantized encoder cannot do, before any
// weight is read: another device, or a libtorch without the engine.
func checkQuantization(q Quantization, device torch.Device) error {
	if _, err := ParseQuantization(string(q)); err != nil {
		return err
	}
	if q == NoQuantization {
		return nil
	}
	if device != torch.CPU {
		return fmt.Errorf("quantization %s runs on the CPU only (libtorch's dynamic quantized Linear has no %s kernels); use fp32 on %s", q, device, device)
	}
	engines, err := torch.QuantizedEngines()
	if err != nil {
		return err
	}
	return needEngine(q, engines, fbgemmVNNI())
}

// needEngine refuses q when engines, those of this libtorch and CPU, lack
// the one q prepacks with.
func needEngine(q Quantization, engines []string, vnni bool) error {
	for _, e := range engines {
		if e == q.engine(vnni) {
			return nil
		}
	}
	have := strings.Join(engines, ", ")
	if have == "" {
		have = "none"
	}
	return fmt.Errorf("quantization %s needs libtorch's %s quantized engine, which this libtorch or CPU lacks (engines: %s)", q, q.engine(vnni), have)
}

// Per-layer Linear layers as the quantized encoder packs them: the name of
// the packed attribute and the Hugging Face weights it holds.
type packedLinear struct {
	attr  string
	names []string // weight prefixes, concatenated along the output rows
}

func quantizedLinears(l int, fused bool) []packedLinear {
	p := func(s string) string { return fmt.Sprintf("encoder.layer.%d.%s", l, s) }
	var out []packedLinear
	if fused {
		out = append(out, packedLinear{jitName(p("attention.self.qkv")), []string{p("attention.self.query"), p("attention.self.key"), p("attention.self.value")}})
	} else {
		for _, n := range []string{"query", "key", "value"} {
			out = append(out, packedLinear{jitName(p("attention.self." + n)), []string{p("attention.self." + n)}})
		}
	}
	for _, n := range []string{"attention.output.dense", "intermediate.dense", "output.dense"} {
		out = append(out, packedLinear{jitName(p(n)), []string{p(n)}})
	}
	return out
}

// buildQuantized registers the float32 parameters (embeddings, LayerNorm),
// packs every Linear layer with the quantized engine, and compiles the
// inference-only encoder. weights has passed build's shape checks. Runs on
// the worker.
func (m *Model) buildQuantized(weights map[string]hf.RawTensor) (*torch.Module, error) {
	return m.buildQuantizedWith(weights, bertPositions{})
}

// buildQuantizedWith is buildQuantized for a BERT-shaped family that
// numbers positions as pos says (XLM-RoBERTa: from padding_idx+1).
func (m *Model) buildQuantizedWith(weights map[string]hf.RawTensor, pos bertPositions) (*torch.Module, error) {
	cfg := m.Folder.Config
	if err := torch.SetQuantizedEngine(QuantizedEngine(m.quant)); err != nil {
		return nil, err
	}
	mod, err := torch.NewModule("MiniLMQuantized")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*torch.Module, error) {
		mod.Close()
		return nil, err
	}
	norms := map[string]hf.RawTensor{} // LayerNorm weights, for smoothing
	for _, name := range paramOrder(cfg) {
		if strings.HasSuffix(name, "LayerNorm.weight") || strings.HasSuffix(name, "LayerNorm.bias") || strings.HasPrefix(name, "embeddings.") {
			if err := registerFloat32(mod, name, weights[name]); err != nil {
				return fail(err)
			}
			norms[name] = weights[name]
			delete(weights, name)
		}
	}
	for l := 0; l < cfg.NumHiddenLayers; l++ {
		for _, pl := range quantizedLinears(l, m.quant.fusedQKV()) {
			var in *smoothedInput
			if src := smoothingSource(l, pl); src != "" && m.quant.smoothed() {
				g, err := float32sOf(norms[src+".weight"])
				if err != nil {
					return fail(fmt.Errorf("smoothing %s: %s.weight: %w", pl.attr, src, err))
				}
				b, err := float32sOf(norms[src+".bias"])
				if err != nil {
					return fail(fmt.Errorf("smoothing %s: %s.bias: %w", pl.attr, src, err))
				}
				in = &smoothedInput{gamma: g, beta: b}
			}
			if err := packLinear(mod, pl, weights, m.quant.packingOf(pl.attr), in); err != nil {
				return fail(err)
			}
		}
	}
	if err := registerDense(mod, m.Folder.Dir, m.Folder.Dense); err != nil {
		return fail(err)
	}
	if err := mod.Define(quantizedEncoderSource(cfg, headOf(m.Folder), m.quant, pos)); err != nil {
		return fail(fmt.Errorf("compile quantized encoder: %w", err))
	}
	if err := mod.Train(false); err != nil {
		return fail(err)
	}
	return mod, nil
}

// packLinear concatenates the weights and biases of pl (all of one dtype) and
// registers them packed; it removes them from weights. With in, the weight is
// smoothed first (smoothingScales) and the input multiplier registered as
// smoothAttr(pl.attr).
func packLinear(mod *torch.Module, pl packedLinear, weights map[string]hf.RawTensor, kind torch.PackedLinear, in *smoothedInput) error {
	var wdata, bdata bytes.Buffer
	var rows, cols int64
	dtype := weights[pl.names[0]+".weight"].DType
	for _, n := range pl.names {
		w, b := weights[n+".weight"], weights[n+".bias"]
		if w.DType != dtype || b.DType != dtype {
			return fmt.Errorf("weights of %s: %s and %s differ in dtype from %s", pl.attr, n+".weight", n+".bias", dtype)
		}
		wdata.Write(w.Data)
		bdata.Write(b.Data)
		rows += w.Shape[0]
		cols = w.Shape[1]
	}
	wraw := hf.RawTensor{DType: dtype, Shape: []int64{rows, cols}, Data: wdata.Bytes()}
	var wt *torch.Tensor
	var err error
	if in != nil {
		wt, err = smoothWeight(mod, pl.attr, wraw, *in)
	} else {
		wt, err = tensorOf(wraw)
	}
	if err != nil {
		return fmt.Errorf("weight %s: %w", pl.attr, err)
	}
	defer wt.Close()
	bt, err := tensorOf(hf.RawTensor{DType: dtype, Shape: []int64{rows}, Data: bdata.Bytes()})
	if err != nil {
		return fmt.Errorf("bias %s: %w", pl.attr, err)
	}
	defer bt.Close()
	if kind == torch.Float16Weights {
		if err := mod.RegisterPackedLinear(pl.attr, wt, bt, kind); err != nil {
			return err
		}
	} else {
		// int8: embtune.linear_int8 adds the bias after the per-token rescale.
		if err := mod.RegisterPackedLinear(pl.attr, wt, nil, kind); err != nil {
			return err
		}
		fb, err := bt.To(torch.CPU, torch.Float32)
		if err != nil {
			return fmt.Errorf("bias %s: %w", pl.attr, err)
		}
		defer fb.Close()
		if err := mod.RegisterParameter(biasAttr(pl.attr), fb, false); err != nil {
			return err
		}
	}
	for _, n := range pl.names {
		delete(weights, n+".weight")
		delete(weights, n+".bias")
	}
	return nil
}

// quantizedEncoderSource is the inference-only CPU encoder of encoderSource
// (unpadded tokens, the same forward and token_embeddings) with every Linear
// layer a quantized operator on a packed attribute. Layers are unrolled into
// one method each because the packed weights are attributes, not tensors.
//
// Attention, the residual add with LayerNorm, and GELU are the fused
// operators of torch/encoder_ops.cpp (embtune.*): attention runs on
// the unpadded tokens of each sequence, found by offsets, and the LayerNorm
// that feeds a smoothed GEMM also writes its smoothed copy. A layer takes and
// returns the hidden states x and the next QKV GEMM's input xs (x, smoothed
// or not).
//
// pos numbers the positions as encoderSource's CPU module does: the column
// index (BERT), or RoBERTa's count of the non-padding ids from
// padding_idx+1.
func quantizedEncoderSource(c hf.Config, top head, q Quantization, pos bertPositions) string {
	h := c.HiddenSize
	eps := torch.ScriptFloat(c.LayerNormEps)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	// smoothing names the input multiplier of a smoothed Linear layer, or None.
	smoothing := map[string]string{}
	for l := 0; l < c.NumHiddenLayers; l++ {
		for _, pl := range quantizedLinears(l, q.fusedQKV()) {
			smoothing[pl.attr] = "None"
			if q.smoothed() && smoothingSource(l, pl) != "" {
				smoothing[pl.attr] = "self." + smoothAttr(pl.attr)
			}
		}
	}
	// lin writes dst = the Linear layer attr of x, and GELU of it with gelu.
	lin := func(dst, x, attr string, gelu bool) {
		if q.packingOf(attr) == torch.Float16Weights {
			w("    %s = quantized.linear_dynamic_fp16(%s, self.%s)", dst, x, attr)
			if gelu {
				w("    %s = embtune.gelu_(%s)", dst, dst)
			}
			return
		}
		reduce := "False"
		if q == Int8ReduceRange || q == Int8Mixed {
			reduce = "True"
		}
		w("    %s = embtune.linear_int8(%s, self.%s, self.%s, %s, %s)", dst, x, attr, biasAttr(attr), reduce, pyBool(gelu))
	}
	layerAttr := func(l int, s string) string { return jitName(fmt.Sprintf("encoder.layer.%d.%s", l, s)) }
	qkvAttr := func(l int) string {
		if q.fusedQKV() {
			return layerAttr(l, "attention.self.qkv")
		}
		return layerAttr(l, "attention.self.query")
	}

	w("def embed(self, ids: Tensor, positions: Tensor) -> Tensor:")
	w("    x = torch.embedding(self.%s, ids)", jitName("embeddings.word_embeddings.weight"))
	w("    x = x + torch.embedding(self.%s, positions)", jitName("embeddings.position_embeddings.weight"))
	w("    x = x + self.%s[0]", jitName("embeddings.token_type_embeddings.weight"))
	w("    return torch.layer_norm(x, [%d], self.%s, self.%s, %s)", h,
		jitName("embeddings.LayerNorm.weight"), jitName("embeddings.LayerNorm.bias"), eps)
	w("")
	for l := 0; l < c.NumHiddenLayers; l++ {
		attr := func(s string) string { return layerAttr(l, s) }
		w("def layer%d(self, x: Tensor, xs: Tensor, offsets: Tensor) -> Tuple[Tensor, Tensor]:", l)
		if q.fusedQKV() {
			lin("qkv", "xs", attr("attention.self.qkv"), false)
		} else {
			lin("q", "xs", attr("attention.self.query"), false)
			lin("k", "xs", attr("attention.self.key"), false)
			lin("v", "xs", attr("attention.self.value"), false)
			w("    qkv = torch.cat([q, k, v], 1)")
		}
		w("    a = embtune.attention(qkv, offsets, %d)", c.NumAttentionHeads)
		lin("a", "a", attr("attention.output.dense"), false)
		w("    x, xs = embtune.add_layer_norm(a, x, self.%s, self.%s, %s, %s)",
			attr("attention.output.LayerNorm.weight"), attr("attention.output.LayerNorm.bias"), eps, smoothing[attr("intermediate.dense")])
		lin("f", "xs", attr("intermediate.dense"), true)
		lin("f", "f", attr("output.dense"), false)
		next := "None"
		if l+1 < c.NumHiddenLayers {
			next = smoothing[qkvAttr(l+1)]
		}
		w("    return embtune.add_layer_norm(f, x, self.%s, self.%s, %s, %s)",
			attr("output.LayerNorm.weight"), attr("output.LayerNorm.bias"), eps, next)
		w("")
	}
	w("def packed(self, input_ids: Tensor, attention_mask: Tensor, idx: Tensor) -> Tensor:")
	w("    s = input_ids.size(1)")
	w("    lengths = (attention_mask > 0).sum(1)")
	w("    offsets = torch.cat([lengths.new_zeros([1]), lengths.cumsum(0)])")
	pos.writePackedEmbed(w)
	if first := smoothing[qkvAttr(0)]; first != "None" {
		w("    xs = x * %s", first)
	} else {
		w("    xs = x")
	}
	for l := 0; l < c.NumHiddenLayers; l++ {
		w("    x, xs = self.layer%d(x, xs, offsets)", l)
	}
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
	w("def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:")
	w("    idx = self.real_tokens(attention_mask)")
	w("    x = self.packed(input_ids, attention_mask, idx)")
	writeHead(w, h, top, true)
	return b.String()
}

// pyBool is b as TorchScript spells it.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// biasAttr names the float32 bias of the int8 Linear layer attr.
func biasAttr(attr string) string { return attr + "__int8_bias" }

// floatOnly refuses work that needs the float32 parameters (export, reading
// or setting weights, training) on a quantized model.
func (m *Model) floatOnly(what string) error {
	if m.quant == NoQuantization {
		return nil
	}
	return fmt.Errorf("%s needs the float32 model; this one is loaded with quantization %s", what, m.quant)
}
