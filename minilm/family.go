package minilm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

// The encoder is TorchScript source compiled by libtorch (Module.Define), with
// the safetensors weights registered as parameters. Parameter names are the
// Hugging Face names with "." replaced by "__" (TorchScript attribute names
// cannot contain dots); HF names never contain "__", so the mapping is
// reversible and exports keep the original names.

// jitName maps a Hugging Face parameter name to its TorchScript attribute.
func jitName(hf string) string { return strings.ReplaceAll(hf, ".", "__") }

// hfName maps a TorchScript attribute back to the Hugging Face name.
func hfName(jit string) string { return strings.ReplaceAll(jit, "__", ".") }

// family is one transformer architecture: everything Load, training and
// export need to know about it. Each family lives in its own file
// (bert.go, xlmroberta.go, ...) and has one line in families.
type family struct {
	// name is the model_type it is registered under.
	name string
	// prefixes are stripped from stored tensor names (BertForXxx saves "bert.").
	prefixes []string
	// validate checks the config.json fields the family reads beyond the
	// sizes hf.Config.Validate checks for every family.
	validate func(hf.Config) error
	// shapes lists every trainable weight with its expected shape, under
	// its Hugging Face name; order is their registration order.
	shapes func(hf.Config) map[string][]int64
	order  func(hf.Config) []string
	// layerPrefix names per-layer weights (layerPrefix + "N."), to refuse
	// weights with more layers than the config says.
	layerPrefix string
	// maxPositions is the longest input the position embeddings cover.
	maxPositions func(hf.Config) int
	// source is the TorchScript encoder and head: the CPU module (cpu) or
	// the stock-operator module that export and CUDA use. Both define
	// token_embeddings(input_ids, attention_mask) and forward(input_ids,
	// attention_mask).
	source func(c hf.Config, top head, cpu bool) string
	// quantized builds the int8 / fp16-weight encoder from weights that
	// passed the shape checks; nil when the family has none, and then
	// noQuantized says why.
	quantized   func(m *Model, weights map[string]hf.RawTensor) (*torch.Module, error)
	noQuantized string
	// normWeight says whether a weight belongs to a LayerNorm; nil: its
	// name holds "LayerNorm." (BERT's spelling).
	normWeight func(name string) bool
	// columnPositions: position ids are the column index (learned absolute
	// positions from the first column, padding included), so a
	// left-padded text's positions depend on its batch. Families that
	// number positions from the tokens (RoBERTa's cumsum) or use rotary
	// embeddings (which see only differences of positions) are not.
	columnPositions bool
	// paddingRows are the embedding rows that transformers builds with
	// nn.Embedding's padding_idx, by Hugging Face weight name: their
	// gradient is zero by construction, so training never moves them
	// (nil: none). It matters where that row is a real token, not only
	// padding: multilingual-e5-small's BERT config names pad_token_id 0,
	// which is XLM-R's <s>, at the start of every text.
	paddingRows func(hf.Config) map[string]int64
}

// families maps config.json's model_type to its family. architectures
// (config.json's "architectures") name it when model_type is absent.
var families = map[string]*family{
	"bert":        bert,
	"xlm-roberta": xlmRoberta,
	"mpnet":       mpnet,
	"modernbert":  modernBERT,
	"qwen3":       qwen3,
	"gemma3_text": gemma3,
}

var architectures = map[string]string{
	"BertModel": "bert", "BertForMaskedLM": "bert", "BertForPreTraining": "bert",
	"XLMRobertaModel": "xlm-roberta", "XLMRobertaForMaskedLM": "xlm-roberta",
	"MPNetModel": "mpnet", "MPNetForMaskedLM": "mpnet",
	"ModernBertModel": "modernbert", "ModernBertForMaskedLM": "modernbert",
	"Qwen3Model": "qwen3", "Qwen3ForCausalLM": "qwen3",
	"Gemma3TextModel": "gemma3_text", "Gemma3ForCausalLM": "gemma3_text",
}

// familyOf selects the family of a config.json, or says why none can run it.
// Models that need trust_remote_code are refused earlier, by hf.ReadFolder.
func familyOf(c hf.Config) (*family, error) {
	name := c.ModelType
	if name == "" {
		for _, a := range c.Architectures {
			if n, ok := architectures[a]; ok {
				name = n
				break
			}
		}
		if name == "" && len(c.Architectures) == 0 {
			name = "bert" // BertConfig before model_type was written
		}
	}
	if f, ok := families[name]; ok {
		if err := f.validate(c); err != nil {
			return nil, fmt.Errorf("config.json (model_type %q): %w", name, err)
		}
		return f, nil
	}
	known := make([]string, 0, len(families))
	for n := range families {
		known = append(known, n)
	}
	slices.Sort(known)
	want := strings.Join(known, ", ")
	if name == "" {
		return nil, fmt.Errorf("config.json: no model_type, and architectures %v name no supported family (supported: %s)", c.Architectures, want)
	}
	return nil, fmt.Errorf("config.json: model_type %q is not supported (supported: %s)", name, want)
}

// stripPrefixes renames stored tensors saved under a task model's prefix.
func (f *family) stripPrefixes(weights map[string]hf.RawTensor) {
	for k, v := range weights {
		for _, p := range f.prefixes {
			if rest, ok := strings.CutPrefix(k, p); ok {
				delete(weights, k)
				weights[rest] = v
				break
			}
		}
	}
}

// checkPaddingSide refuses a folder whose tokenizer pads on a side that
// changes its vectors in sentence-transformers, batch by batch, in a way
// embtune does not reproduce. embtune pads on the right; where the side
// makes no difference to a text's vector (every pooling mode but cls, on
// families whose positions do not move with padding) a left-padding
// folder gets sentence-transformers' vectors: its lasttoken pooling finds
// the last real token from the attention mask on either side, as embtune's
// does (Qwen3-Embedding pads left; testdata/golden/encoders/*-left).
func (f *family) checkPaddingSide(folder hf.Folder) error {
	if folder.PaddingSide != hf.PadLeft {
		return nil
	}
	if slices.Contains(folder.Pooling.Modes, hf.PoolCLS) {
		return fmt.Errorf("tokenizer_config.json pads on the left (padding_side \"left\") but %s pools the first token (cls): "+
			"sentence-transformers would pool a padding token for every text shorter than the longest in its batch; "+
			"set padding_side to \"right\"", folder.PoolingPath)
	}
	if f.columnPositions {
		return fmt.Errorf("tokenizer_config.json pads on the left (padding_side \"left\") but model_type %q numbers positions "+
			"from the first column, padding included: sentence-transformers' vector of a text would depend on the "+
			"longest text in its batch, and embtune pads on the right; set padding_side to \"right\"", f.name)
	}
	return nil
}

// PaddingRows maps each embedding weight (Hugging Face name) that
// transformers' model holds fixed at one row to that row: nn.Embedding's
// padding_idx, whose gradient is always zero. Training zeroes those rows'
// gradients before clipping, as the sentence-transformers model's backward
// does. Rows outside the table are left out.
func (m *Model) PaddingRows() map[string]int64 {
	if m.fam.paddingRows == nil {
		return nil
	}
	cfg := m.Folder.Config
	rows, shapes := m.fam.paddingRows(cfg), m.fam.shapes(cfg)
	for name, row := range rows {
		if s, ok := shapes[name]; !ok || row < 0 || row >= s[0] {
			delete(rows, name)
		}
	}
	return rows
}

// padRow is pad_token_id, or def when config.json has none (the default of
// transformers' config class for the family).
func padRow(c hf.Config, def int) int64 {
	if c.PadTokenID != nil {
		return int64(*c.PadTokenID)
	}
	return int64(def)
}

// ModelType is the family the model was built as (config.json's model_type).
func (m *Model) ModelType() string { return m.fam.name }

// NoWeightDecay says whether transformers' Trainer leaves the parameter
// (Hugging Face name) out of weight decay: biases and LayerNorm weights.
func (m *Model) NoWeightDecay(name string) bool {
	if strings.HasSuffix(name, "bias") {
		return true
	}
	if m.fam.normWeight != nil {
		return m.fam.normWeight(name)
	}
	return strings.Contains(name, "LayerNorm.")
}
