package minilm

import (
	"fmt"
	"math"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// smoothAlpha is SmoothQuant's migration strength α (Xiao et al. 2023, its
// default): half of each input channel's range moves into the weights.
const smoothAlpha = 0.5

// smoothedInput is the LayerNorm whose output feeds a Linear layer: its
// weight γ and bias β bound that input's channels without calibration data.
type smoothedInput struct {
	gamma, beta []float32
}

// smoothingSource names the LayerNorm that feeds the packed Linear pl of
// layer l, or "" when pl is not smoothed. Only the inputs that LayerNorm
// produces are smoothed: the fused QKV (the previous layer's output, or the
// embeddings) and the FFN's up projection (the attention block's output).
// The FFN's down projection reads GELU's output, which smoothing made worse
// (worst cosine 0.95 even with calibrated ranges), and the attention output
// projection loses almost nothing as it is (0.9996 quantized alone).
func smoothingSource(l int, pl packedLinear) string {
	switch pl.attr {
	case jitName(fmt.Sprintf("encoder.layer.%d.attention.self.qkv", l)):
		if l == 0 {
			return "embeddings.LayerNorm"
		}
		return fmt.Sprintf("encoder.layer.%d.output.LayerNorm", l-1)
	case jitName(fmt.Sprintf("encoder.layer.%d.intermediate.dense", l)):
		return fmt.Sprintf("encoder.layer.%d.attention.output.LayerNorm", l)
	}
	return ""
}

// smoothingScales is SmoothQuant's per-input-channel scale
// s_j = a_j^α / max_i |w_ij|^(1-α) for the weight w [rows, cols], with the
// activation range a_j = |γ_j| + |β_j| of the LayerNorm that produces the
// input: a data-free stand-in for the calibrated max |x_j|, since the
// normalised values are O(1) and γ, β carry BERT's outlier channels. The
// Linear then computes (x / s) (W diag(s))ᵀ, the same product, with the
// outlier channels shrunk before the activations are quantized to 8 bits.
func smoothingScales(in smoothedInput, w []float32, rows, cols int) ([]float32, error) {
	if len(in.gamma) != cols || len(in.beta) != cols || len(w) != rows*cols {
		return nil, fmt.Errorf("smoothing: LayerNorm of %d and %d channels for a weight of %d values, %d×%d", len(in.gamma), len(in.beta), len(w), rows, cols)
	}
	const tiny = 1e-5
	wmax := make([]float64, cols)
	for i := 0; i < rows; i++ {
		for j, v := range w[i*cols : (i+1)*cols] {
			wmax[j] = math.Max(wmax[j], math.Abs(float64(v)))
		}
	}
	s := make([]float32, cols)
	for j := range s {
		a := math.Abs(float64(in.gamma[j])) + math.Abs(float64(in.beta[j]))
		v := math.Pow(math.Max(a, tiny), smoothAlpha) / math.Pow(math.Max(wmax[j], tiny), 1-smoothAlpha)
		if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
			return nil, fmt.Errorf("smoothing: channel %d has scale %v (γ %v, β %v, max |w| %v)", j, v, in.gamma[j], in.beta[j], wmax[j])
		}
		s[j] = float32(v)
	}
	return s, nil
}

// smoothLinear scales the columns of the float32 weight w [rows, cols] by s
// in place and returns 1/s, the multiplier of the input.
func smoothLinear(w []float32, rows, cols int, s []float32) []float32 {
	for i := 0; i < rows; i++ {
		row := w[i*cols : (i+1)*cols]
		for j := range row {
			row[j] *= s[j]
		}
	}
	inv := make([]float32, cols)
	for j, v := range s {
		inv[j] = 1 / v
	}
	return inv
}

// float32sOf reads a safetensors tensor as float32 values.
func float32sOf(raw hf.RawTensor) ([]float32, error) {
	t, err := tensorOf(raw)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if raw.DType != hf.F32 {
		f, err := t.To(torch.CPU, torch.Float32)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		t = f
	}
	return t.Float32s()
}

// smoothAttr is the module attribute holding the input multiplier 1/s of
// the packed Linear attr.
func smoothAttr(attr string) string { return attr + "__smooth" }

// smoothWeight returns the float32 weight w of the Linear attr with its
// columns scaled by smoothingScales, and registers the input multiplier 1/s
// as the module parameter smoothAttr(attr).
func smoothWeight(mod *torch.Module, attr string, w hf.RawTensor, in smoothedInput) (*torch.Tensor, error) {
	rows, cols := int(w.Shape[0]), int(w.Shape[1])
	v, err := float32sOf(w)
	if err != nil {
		return nil, fmt.Errorf("smoothing %s: %w", attr, err)
	}
	s, err := smoothingScales(in, v, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", attr, err)
	}
	inv, err := torch.FromFloat32(smoothLinear(v, rows, cols, s), int64(cols))
	if err != nil {
		return nil, fmt.Errorf("smoothing %s: %w", attr, err)
	}
	defer inv.Close()
	if err := mod.RegisterParameter(smoothAttr(attr), inv, false); err != nil {
		return nil, fmt.Errorf("smoothing %s: %w", attr, err)
	}
	return torch.FromFloat32(v, w.Shape...)
}
