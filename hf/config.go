package hf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Config is the subset of a Hugging Face model config (config.json) that the
// encoder families use. Which fields a family reads is its own business
// (package minilm); Validate checks those every family shares.
type Config struct {
	ModelType                 string   `json:"model_type"`
	Architectures             []string `json:"architectures"`
	VocabSize                 int      `json:"vocab_size"`
	HiddenSize                int      `json:"hidden_size"`
	NumHiddenLayers           int      `json:"num_hidden_layers"`
	NumAttentionHeads         int      `json:"num_attention_heads"`
	IntermediateSize          int      `json:"intermediate_size"`
	HiddenAct                 string   `json:"hidden_act"`
	HiddenDropoutProb         float64  `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64  `json:"attention_probs_dropout_prob"`
	MaxPositionEmbeddings     int      `json:"max_position_embeddings"`
	TypeVocabSize             int      `json:"type_vocab_size"`
	LayerNormEps              float64  `json:"layer_norm_eps"`
	PositionEmbeddingType     string   `json:"position_embedding_type"`
	// PadTokenID is pad_token_id: RoBERTa's padding_idx, where its
	// position ids start.
	PadTokenID *int `json:"pad_token_id"`
	// RelativeAttentionNumBuckets is MPNet's relative_attention_num_buckets.
	RelativeAttentionNumBuckets int `json:"relative_attention_num_buckets"`
	// ModernBERT's fields (ModernBertConfig): norms and biases, the
	// activation, attention layout and rotary bases, in both the
	// transformers 5 spelling (layer_types, rope_parameters) and the older
	// one (global_attn_every_n_layers, global_rope_theta, local_rope_theta).
	NormEps                float64         `json:"norm_eps"`
	NormBias               bool            `json:"norm_bias"`
	AttentionBias          bool            `json:"attention_bias"`
	MLPBias                bool            `json:"mlp_bias"`
	HiddenActivation       string          `json:"hidden_activation"`
	LocalAttention         int             `json:"local_attention"`
	GlobalAttnEveryNLayers int             `json:"global_attn_every_n_layers"`
	GlobalRopeTheta        float64         `json:"global_rope_theta"`
	LocalRopeTheta         float64         `json:"local_rope_theta"`
	LayerTypes             []string        `json:"layer_types"`
	RopeParameters         json.RawMessage `json:"rope_parameters"`
	EmbeddingDropout       float64         `json:"embedding_dropout"`
	MLPDropout             float64         `json:"mlp_dropout"`
	AttentionDropout       float64         `json:"attention_dropout"`
	// Decoder fields (Qwen3Config): grouped-query attention, an explicit
	// head size, RMSNorm and the rotary base (rope_theta, or
	// rope_parameters in transformers 5).
	NumKeyValueHeads int     `json:"num_key_value_heads"`
	HeadDim          int     `json:"head_dim"`
	RMSNormEps       float64 `json:"rms_norm_eps"`
	RopeTheta        float64 `json:"rope_theta"`
	UseSlidingWindow bool    `json:"use_sliding_window"`
	// Gemma3TextConfig's fields beyond the decoder ones above.
	QueryPreAttnScalar        float64         `json:"query_pre_attn_scalar"`
	SlidingWindow             *int            `json:"sliding_window"`
	UseBidirectionalAttention bool            `json:"use_bidirectional_attention"`
	AttnLogitSoftcapping      *float64        `json:"attn_logit_softcapping"`
	RopeLocalBaseFreq         float64         `json:"rope_local_base_freq"`
	RopeScaling               json.RawMessage `json:"rope_scaling"`
	// AutoMap is present when the model's code ships with it (trust_remote_code).
	AutoMap json.RawMessage `json:"auto_map"`
}

// Validate checks the sizes every encoder family reads.
func (c Config) Validate() error {
	switch {
	case c.VocabSize <= 0, c.HiddenSize <= 0, c.NumHiddenLayers <= 0, c.NumAttentionHeads <= 0,
		c.MaxPositionEmbeddings <= 0:
		return errors.New("vocab_size, hidden_size, num_hidden_layers, num_attention_heads and max_position_embeddings must be positive")
	case c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	case c.HiddenDropoutProb < 0 || c.HiddenDropoutProb >= 1 || c.AttentionProbsDropoutProb < 0 || c.AttentionProbsDropoutProb >= 1:
		return errors.New("dropout probabilities must be in [0, 1)")
	}
	return nil
}

// remoteCodeTypes are model types whose modelling code ships as Python in
// the model's repository (transformers' trust_remote_code=True), with what
// they are.
var remoteCodeTypes = map[string]string{
	"nomic_bert":                       "nomic-embed's NomicBertModel",
	"jina_bert":                        "jina-embeddings-v2's JinaBertModel",
	"new":                              "gte-multilingual's NewModel",
	"xlm-roberta-flash-implementation": "jina-embeddings-v3's XLMRobertaLoRA",
}

// remoteCode refuses a model that needs trust_remote_code: its layers are
// defined by Python code shipped with it, which embtune cannot run.
func (c Config) remoteCode() error {
	what, known := remoteCodeTypes[c.ModelType]
	if !known && len(c.AutoMap) == 0 {
		return nil
	}
	if !known {
		what = "auto_map names its own modelling code"
	}
	return fmt.Errorf("model_type %q (%s) needs trust_remote_code: its layers are Python code shipped with the model, which embtune does not run", c.ModelType, what)
}

// stModule is one entry of modules.json.
type stModule struct {
	Idx  int    `json:"idx"`
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
}

// Folder describes a sentence-transformers model folder as read from disk.
type Folder struct {
	Dir         string
	Config      Config
	Pooling     Pooling
	PoolingPath string  // the Pooling module's folder, e.g. "1_Pooling"
	Dense       []Dense // Dense modules after pooling, in order
	Normalize   bool    // modules.json ends with a Normalize module
	// NormalizePath is the Normalize module's folder ("" when absent or at the root).
	NormalizePath string
	MaxSeqLength  int  // sentence_bert_config.json, else tokenizer_config.json's model_max_length
	DoLowerCase   bool // sentence_bert_config.json: ST lowercases before tokenizing
	// PaddingSide is tokenizer_config.json's padding_side, "right" (its
	// default) or "left": where sentence-transformers pads a batch.
	PaddingSide string
	// Prompts are config_sentence_transformers.json's prompts, with "query"
	// and "document" always present (empty unless set), as in
	// SentenceTransformer. DefaultPromptName is "" when none is set.
	Prompts           map[string]string
	DefaultPromptName string
}

// ReadFolder reads and validates the configuration files of a
// sentence-transformers folder (config.json, modules.json, 1_Pooling/,
// sentence_bert_config.json). Weights and tokenizer are read by Load.
func ReadFolder(dir string) (Folder, error) {
	f := Folder{Dir: dir}
	st, err := os.Stat(dir)
	if err != nil {
		return f, fmt.Errorf("model folder: %w%s", err, missingFolderHint(dir, err))
	}
	if !st.IsDir() {
		return f, fmt.Errorf("model folder %s is not a directory", dir)
	}
	if err := refuseStatic(dir); err != nil {
		return f, err
	}
	if err := ReadJSON(filepath.Join(dir, "config.json"), &f.Config); err != nil {
		return f, err
	}
	if err := f.Config.remoteCode(); err != nil {
		return f, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	if err := f.Config.Validate(); err != nil {
		return f, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}

	if err := f.readModules(); err != nil {
		return f, err
	}
	if err := f.readSTConfig(); err != nil {
		return f, err
	}

	var sb struct {
		MaxSeqLength int  `json:"max_seq_length"`
		DoLowerCase  bool `json:"do_lower_case"`
	}
	if _, err := ReadOptionalJSON(filepath.Join(dir, "sentence_bert_config.json"), &sb); err != nil {
		return f, err
	}
	f.MaxSeqLength = sb.MaxSeqLength
	f.DoLowerCase = sb.DoLowerCase
	if f.MaxSeqLength <= 0 {
		if f.MaxSeqLength, err = maxSeqFromTokenizer(dir); err != nil {
			return f, err
		}
	}
	if f.MaxSeqLength <= 0 || f.MaxSeqLength > f.Config.MaxPositionEmbeddings {
		f.MaxSeqLength = f.Config.MaxPositionEmbeddings
	}
	if f.PaddingSide, err = paddingSide(dir); err != nil {
		return f, err
	}
	return f, nil
}

// paddingSide is tokenizer_config.json's padding_side, as transformers'
// tokenizers read it: "right" when absent.
func paddingSide(dir string) (string, error) {
	var c struct {
		PaddingSide *string `json:"padding_side"`
	}
	path := filepath.Join(dir, "tokenizer_config.json")
	if _, err := ReadOptionalJSON(path, &c); err != nil {
		return "", err
	}
	if c.PaddingSide == nil {
		return PadRight, nil
	}
	switch *c.PaddingSide {
	case PadRight, PadLeft:
		return *c.PaddingSide, nil
	}
	return "", fmt.Errorf("%s: padding_side %q is not right or left", path, *c.PaddingSide)
}

// The sides a tokenizer pads a batch on (tokenizer_config.json's padding_side).
const (
	PadRight = "right"
	PadLeft  = "left"
)

// ReadJSON decodes the JSON file at path into v; errors name the file.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path) // its error names the path
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: malformed JSON: %w", path, err)
	}
	return nil
}

// ReadOptionalJSON is ReadJSON for a file that may be missing: then v is
// left as it is and found is false.
func ReadOptionalJSON(path string, v any) (found bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return true, ReadJSON(path, v)
}

// EmbeddingShape reads a folder's embedding width and max_seq_length
// without validating that embtune can run it (packaging ships any folder):
// the output width of the head when ReadFolder accepts the folder, else
// 1_Pooling's word_embedding_dimension, else config.json's hidden_size;
// sentence_bert_config.json's max_seq_length, else max_position_embeddings
// up to 512.
func EmbeddingShape(dir string) (dim, maxSeq int, err error) {
	var cfg struct {
		HiddenSize            int `json:"hidden_size"`
		MaxPositionEmbeddings int `json:"max_position_embeddings"`
	}
	if err := ReadJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return 0, 0, err
	}
	if f, err := ReadFolder(dir); err == nil {
		// After concatenated pooling modes and Dense modules; max_seq_length
		// also from tokenizer_config.json, as sentence-transformers 6 reads it.
		dim, maxSeq = f.Dim(), f.MaxSeqLength
	} else {
		// A folder embtune cannot load (packaging another model): the
		// declared sizes alone.
		var pooling struct {
			Dim int `json:"word_embedding_dimension"`
		}
		if _, err := ReadOptionalJSON(filepath.Join(dir, "1_Pooling", "config.json"), &pooling); err != nil {
			return 0, 0, err
		}
		var st struct {
			MaxSeqLength int `json:"max_seq_length"`
		}
		if _, err := ReadOptionalJSON(filepath.Join(dir, "sentence_bert_config.json"), &st); err != nil {
			return 0, 0, err
		}
		dim, maxSeq = pooling.Dim, st.MaxSeqLength
	}
	if dim == 0 {
		dim = cfg.HiddenSize
	}
	if maxSeq == 0 {
		maxSeq = min(cfg.MaxPositionEmbeddings, 512)
	}
	if dim <= 0 || maxSeq <= 0 {
		return 0, 0, fmt.Errorf("cannot tell the embedding size (%d) or max_seq_length (%d) from config.json, "+
			"1_Pooling/config.json and sentence_bert_config.json", dim, maxSeq)
	}
	return dim, maxSeq, nil
}

// refuseStatic names a StaticEmbedding (model2vec) folder, which has no
// transformer config.json (model2vec's own config.json has model_type
// "model2vec" and none of the sizes): a token-embedding table, averaged.
func refuseStatic(dir string) error {
	var modules []stModule
	if found, err := ReadOptionalJSON(filepath.Join(dir, "modules.json"), &modules); err != nil || !found {
		return nil //nolint:nilerr // readModules reports a bad modules.json
	}
	for _, m := range modules {
		if moduleClass(m.Type) == "StaticEmbedding" {
			return fmt.Errorf("%s is a StaticEmbedding (model2vec) folder: a static token-embedding table with no transformer, "+
				"which embtune does not run (it runs transformer encoders: a Transformer module with config.json)", dir)
		}
	}
	return nil
}

// missingFolderHint says, for a folder that does not exist, that embtune
// reads local folders only, and how to get one from a Hub id.
func missingFolderHint(dir string, err error) string {
	if !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	hint := " (embtune reads local sentence-transformers folders and downloads nothing"
	if parts := strings.Split(dir, "/"); len(parts) == 2 && parts[0] != "" && parts[0] != "." && parts[0] != ".." && !filepath.IsAbs(dir) {
		hint += fmt.Sprintf("; %q looks like a Hugging Face Hub id: download it first, e.g. `hf download %s --local-dir DIR`, and pass --model DIR", dir, dir)
	}
	return hint + ")"
}
