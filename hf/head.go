package hf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The head is what a sentence-transformers folder puts after the
// Transformer: one Pooling module, any number of Dense modules, and an
// optional Normalize at the end. Anything else it declares is refused with
// an error naming the file, never run as something different.

// Pooling modes, spelled as sentence-transformers' Pooling.POOLING_MODES.
const (
	PoolCLS          = "cls"
	PoolMax          = "max"
	PoolMean         = "mean"
	PoolMeanSqrtLen  = "mean_sqrt_len_tokens"
	PoolWeightedMean = "weightedmean"
	PoolLastToken    = "lasttoken"
)

// legacyPoolingKeys are the pooling_mode_* booleans of folders saved before
// sentence-transformers 6, in the order Pooling concatenates them
// (_LEGACY_POOLING_MODE_KWARGS).
var legacyPoolingKeys = []struct{ key, mode string }{
	{"pooling_mode_cls_token", PoolCLS},
	{"pooling_mode_max_tokens", PoolMax},
	{"pooling_mode_mean_tokens", PoolMean},
	{"pooling_mode_mean_sqrt_len_tokens", PoolMeanSqrtLen},
	{"pooling_mode_weightedmean_tokens", PoolWeightedMean},
	{"pooling_mode_lasttoken", PoolLastToken},
}

func validPoolingMode(m string) bool {
	switch m {
	case PoolCLS, PoolMax, PoolMean, PoolMeanSqrtLen, PoolWeightedMean, PoolLastToken:
		return true
	}
	return false
}

// Pooling mirrors sentence-transformers' 1_Pooling/config.json, in both its
// spellings: pooling_mode (a name or a list, ST 6) or the legacy
// pooling_mode_* booleans.
type Pooling struct {
	WordEmbeddingDimension int
	// Modes are the pooling modes whose vectors are concatenated, in order.
	Modes []string
	// IncludePrompt is false when prompt tokens are left out of pooling
	// (INSTRUCTOR); embtune refuses such folders.
	IncludePrompt bool
}

// Dim is the pooled width: one hidden vector per mode.
func (p Pooling) Dim() int { return p.WordEmbeddingDimension * len(p.Modes) }

// parsePooling reads a 1_Pooling/config.json as Pooling.load_config does.
func parsePooling(path string) (Pooling, error) {
	var raw map[string]json.RawMessage
	if err := ReadJSON(path, &raw); err != nil {
		return Pooling{}, err
	}
	fail := func(format string, args ...any) (Pooling, error) {
		return Pooling{}, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	p := Pooling{IncludePrompt: true}
	for _, key := range []string{"embedding_dimension", "word_embedding_dimension"} {
		if v, ok := raw[key]; ok {
			if err := json.Unmarshal(v, &p.WordEmbeddingDimension); err != nil {
				return fail("%s: %v", key, err)
			}
			break
		}
	}
	if v, ok := raw["include_prompt"]; ok {
		if err := json.Unmarshal(v, &p.IncludePrompt); err != nil {
			return fail("include_prompt: %v", err)
		}
	}
	if v, ok := raw["pooling_mode"]; ok {
		var one string
		if err := json.Unmarshal(v, &one); err == nil {
			p.Modes = []string{one}
		} else if err := json.Unmarshal(v, &p.Modes); err != nil {
			return fail("pooling_mode must be a mode name or a list of them: %v", err)
		}
	} else {
		for _, l := range legacyPoolingKeys {
			var on bool
			if v, ok := raw[l.key]; ok {
				if err := json.Unmarshal(v, &on); err != nil {
					return fail("%s: %v", l.key, err)
				}
			}
			if on {
				p.Modes = append(p.Modes, l.mode)
			}
		}
		if len(p.Modes) == 0 {
			p.Modes = []string{PoolMean} // as _convert_legacy_pooling_kwargs
		}
	}
	if len(p.Modes) == 0 {
		return fail("pooling_mode is empty")
	}
	for _, m := range p.Modes {
		if !validPoolingMode(m) {
			return fail("unknown pooling mode %q (want cls, max, mean, mean_sqrt_len_tokens, weightedmean or lasttoken)", m)
		}
	}
	if !p.IncludePrompt {
		return fail("include_prompt false (prompt tokens left out of pooling, as INSTRUCTOR does) is not supported")
	}
	return p, nil
}

// Activation functions a Dense module may name, as torch.nn classes.
const (
	ActIdentity = "Identity"
	ActTanh     = "Tanh"
	ActReLU     = "ReLU"
	ActSigmoid  = "Sigmoid"
	ActGELU     = "GELU"
)

// Dense mirrors a sentence-transformers Dense module (2_Dense/config.json):
// activation(linear(x)).
type Dense struct {
	// Path is the module's folder inside the model folder, e.g. "2_Dense".
	Path        string
	InFeatures  int
	OutFeatures int
	Bias        bool
	// Activation is the torch.nn class name (ActTanh, ...).
	Activation string
}

// denseActivation maps activation_function (fullname of a torch.nn module,
// e.g. torch.nn.modules.activation.Tanh) to one embtune runs.
func denseActivation(name string) (string, bool) {
	if !strings.HasPrefix(name, "torch.nn.") {
		return "", false
	}
	cls := name[strings.LastIndex(name, ".")+1:]
	switch cls {
	case ActIdentity, ActTanh, ActReLU, ActSigmoid, ActGELU:
		return cls, true
	}
	return "", false
}

func parseDense(dir, path string) (Dense, error) {
	file := filepath.Join(dir, path, "config.json")
	var c struct {
		InFeatures         int     `json:"in_features"`
		OutFeatures        int     `json:"out_features"`
		Bias               *bool   `json:"bias"`
		ActivationFunction *string `json:"activation_function"`
		ModuleInputName    *string `json:"module_input_name"`
		ModuleOutputName   *string `json:"module_output_name"`
		UseResidual        bool    `json:"use_residual"`
	}
	if err := ReadJSON(file, &c); err != nil {
		return Dense{}, err
	}
	d := Dense{Path: path, InFeatures: c.InFeatures, OutFeatures: c.OutFeatures, Bias: true, Activation: ActTanh}
	if c.Bias != nil {
		d.Bias = *c.Bias
	}
	if c.ActivationFunction != nil {
		act, ok := denseActivation(*c.ActivationFunction)
		if !ok {
			return Dense{}, fmt.Errorf("%s: activation_function %q is not supported (want torch.nn Identity, Tanh, ReLU, Sigmoid or GELU)",
				file, *c.ActivationFunction)
		}
		d.Activation = act
	}
	switch {
	case d.InFeatures <= 0 || d.OutFeatures <= 0:
		return Dense{}, fmt.Errorf("%s: in_features %d and out_features %d must be positive", file, d.InFeatures, d.OutFeatures)
	case c.UseResidual:
		return Dense{}, fmt.Errorf("%s: use_residual is not supported", file)
	case !sentenceEmbedding(c.ModuleInputName) || !sentenceEmbedding(c.ModuleOutputName):
		return Dense{}, fmt.Errorf("%s: Dense must read and write sentence_embedding", file)
	}
	return d, nil
}

func sentenceEmbedding(name *string) bool { return name == nil || *name == "sentence_embedding" }

// WeightsFile is the Dense module's safetensors file. Folders that ship only
// pytorch_model.bin (a pickle) are refused: embtune does not read pickles.
func (d Dense) WeightsFile(dir string) (string, error) {
	p := filepath.Join(dir, d.Path, "model.safetensors")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if _, err := os.Stat(filepath.Join(dir, d.Path, "pytorch_model.bin")); err == nil {
		return "", fmt.Errorf("%s: Dense weights are only in pytorch_model.bin, which embtune cannot read; "+
			"convert them to model.safetensors (e.g. load and save the folder with sentence-transformers)", filepath.Join(dir, d.Path))
	}
	return "", fmt.Errorf("%s: no model.safetensors for the Dense module", filepath.Join(dir, d.Path))
}

// moduleClass returns the class name of a modules.json type, e.g. "Pooling"
// for sentence_transformers.models.Pooling or
// sentence_transformers.sentence_transformer.modules.pooling.Pooling.
func moduleClass(typ string) string {
	if !strings.HasPrefix(typ, "sentence_transformers.") {
		return ""
	}
	return typ[strings.LastIndex(typ, ".")+1:]
}

// readModules reads modules.json: a Transformer at the folder's root, one
// Pooling, then Dense modules, then an optional Normalize.
func (f *Folder) readModules() error {
	file := filepath.Join(f.Dir, "modules.json")
	var modules []stModule
	if err := ReadJSON(file, &modules); err != nil {
		return err
	}
	poolingPath := ""
	sawTransformer := false
	for i, m := range modules {
		class := moduleClass(m.Type)
		switch {
		case class == "Transformer" && i == 0:
			if m.Path != "" {
				return fmt.Errorf("%s: Transformer in subfolder %q is not supported", file, m.Path)
			}
			sawTransformer = true
		case class == "Pooling" && sawTransformer && poolingPath == "":
			poolingPath = m.Path
		case class == "Dense" && poolingPath != "" && !f.Normalize:
			d, err := parseDense(f.Dir, m.Path)
			if err != nil {
				return err
			}
			f.Dense = append(f.Dense, d)
		case class == "Normalize" && poolingPath != "" && !f.Normalize:
			var c struct {
				In  *string `json:"module_input_name"`
				Out *string `json:"module_output_name"`
			}
			if _, err := ReadOptionalJSON(filepath.Join(f.Dir, m.Path, "config.json"), &c); err != nil {
				return err
			}
			if !sentenceEmbedding(c.In) || !sentenceEmbedding(c.Out) {
				return fmt.Errorf("%s: Normalize must read and write sentence_embedding", filepath.Join(f.Dir, m.Path, "config.json"))
			}
			f.Normalize = true
			f.NormalizePath = m.Path
		case class == "Transformer" || class == "Pooling" || class == "Dense" || class == "Normalize":
			return fmt.Errorf("%s: module %d (%s) is out of place: embtune runs Transformer, Pooling, Dense..., Normalize in that order",
				file, i, m.Type)
		default:
			return fmt.Errorf("%s: module type %q is not supported (want Transformer, Pooling, Dense, Normalize)", file, m.Type)
		}
	}
	if !sawTransformer || poolingPath == "" {
		return fmt.Errorf("%s: need a Transformer and a Pooling module", file)
	}
	f.PoolingPath = poolingPath
	poolingFile := filepath.Join(f.Dir, poolingPath, "config.json")
	p, err := parsePooling(poolingFile)
	if err != nil {
		return err
	}
	f.Pooling = p
	if p.WordEmbeddingDimension != f.Config.HiddenSize {
		return fmt.Errorf("%s: word_embedding_dimension %d does not match hidden_size %d",
			poolingFile, p.WordEmbeddingDimension, f.Config.HiddenSize)
	}
	in := p.Dim()
	for _, d := range f.Dense {
		if d.InFeatures != in {
			return fmt.Errorf("%s: in_features %d does not match the %d features before it",
				filepath.Join(f.Dir, d.Path, "config.json"), d.InFeatures, in)
		}
		in = d.OutFeatures
	}
	return nil
}

// Dim is the width of the folder's sentence embeddings: the pooled width,
// or the last Dense module's out_features.
func (f Folder) Dim() int {
	if n := len(f.Dense); n > 0 {
		return f.Dense[n-1].OutFeatures
	}
	return f.Pooling.Dim()
}

// IsMeanOnly reports the head embtune had before other families: mean
// pooling alone, no Dense (Normalize or not).
func (f Folder) IsMeanOnly() bool {
	return len(f.Pooling.Modes) == 1 && f.Pooling.Modes[0] == PoolMean && len(f.Dense) == 0
}

// readSTConfig reads config_sentence_transformers.json: prompts,
// default_prompt_name and similarity_fn_name.
func (f *Folder) readSTConfig() error {
	file := filepath.Join(f.Dir, "config_sentence_transformers.json")
	var c struct {
		Prompts           map[string]string `json:"prompts"`
		DefaultPromptName *string           `json:"default_prompt_name"`
		SimilarityFnName  *string           `json:"similarity_fn_name"`
	}
	if _, err := ReadOptionalJSON(file, &c); err != nil {
		return err
	}
	// SentenceTransformer._default_prompts: "query" and "document" always
	// exist, empty unless the folder sets them, so encode_query and
	// encode_document never fall back to default_prompt_name.
	f.Prompts = map[string]string{"query": "", "document": ""}
	for k, v := range c.Prompts {
		f.Prompts[k] = v
	}
	if c.DefaultPromptName != nil {
		if _, ok := f.Prompts[*c.DefaultPromptName]; !ok {
			return fmt.Errorf("%s: default_prompt_name %q is not one of the prompts (%s)", file, *c.DefaultPromptName, f.PromptNames())
		}
		f.DefaultPromptName = *c.DefaultPromptName
	}
	if c.SimilarityFnName != nil {
		switch sim := *c.SimilarityFnName; {
		case sim == "cosine":
		case sim == "dot" && f.Normalize:
			// Unit vectors: the dot product is the cosine embtune ranks by.
		default:
			return fmt.Errorf("%s: similarity_fn_name %q is not supported: embtune ranks by cosine "+
				"(dot is accepted only when a Normalize module makes it equal)", file, sim)
		}
	}
	return nil
}

// maxSeqFromTokenizer is tokenizer_config.json's model_max_length, which
// sentence-transformers 6 reads as max_seq_length when
// sentence_bert_config.json has none; 0 when absent or not a number.
func maxSeqFromTokenizer(dir string) (int, error) {
	var c struct {
		ModelMaxLength *float64 `json:"model_max_length"`
	}
	if _, err := ReadOptionalJSON(filepath.Join(dir, "tokenizer_config.json"), &c); err != nil {
		return 0, err
	}
	if c.ModelMaxLength == nil || *c.ModelMaxLength <= 0 || *c.ModelMaxLength > 1<<30 {
		return 0, nil
	}
	return int(*c.ModelMaxLength), nil
}
