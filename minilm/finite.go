package minilm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/embtune/embtune/hf"
)

// ErrNonFinite is returned (wrapped) when the encoder produces a NaN or
// infinite value: no route or command may hand such a vector on.
var ErrNonFinite = errors.New("minilm: the encoder produced a non-finite (NaN or Inf) embedding")

// firstNonFinite returns the index of the first NaN or infinite element of
// a float tensor as stored (F32, F16 or BF16), or -1.
func firstNonFinite(t hf.RawTensor) int {
	switch t.DType {
	case hf.F32:
		for i := 0; i+4 <= len(t.Data); i += 4 {
			if binary.LittleEndian.Uint32(t.Data[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	case hf.F16:
		for i := 0; i+2 <= len(t.Data); i += 2 {
			if binary.LittleEndian.Uint16(t.Data[i:])&0x7c00 == 0x7c00 {
				return i / 2
			}
		}
	case hf.BF16:
		for i := 0; i+2 <= len(t.Data); i += 2 {
			if binary.LittleEndian.Uint16(t.Data[i:])&0x7f80 == 0x7f80 {
				return i / 2
			}
		}
	}
	return -1
}

func firstNaNOrInf(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// extraLayers reports weights of encoder layers beyond num_hidden_layers: a
// config that disagrees with the weights would otherwise run a truncated
// encoder silently.
func extraLayers(weights map[string]hf.RawTensor, prefix string, layers int) []string {
	top := -1
	for name := range weights {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, '.'))])
		if err == nil && n > top {
			top = n
		}
	}
	if top < layers {
		return nil
	}
	return []string{fmt.Sprintf("the weights have %d encoder layers, config.json's num_hidden_layers is %d", top+1, layers)}
}

// unknownLayerTensors lists the tensors inside the encoder's layers
// (prefix + "N.") that the family has no use for: a layer of another
// architecture (Gemma 3's extra norms read as Qwen3's layers, BERT's
// relative-position tables), which would otherwise be dropped from the
// model without a word. Rotary frequency buffers, which some checkpoints
// store per layer, are recomputed and not counted.
func unknownLayerTensors(weights map[string]hf.RawTensor, shapes map[string][]int64, prefix, modelType string) []string {
	var out []string
	for name := range weights {
		if _, known := shapes[name]; known || !strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "rotary_emb.inv_freq") {
			continue
		}
		out = append(out, fmt.Sprintf("%s is not a weight of model_type %q", name, modelType))
	}
	return out
}
