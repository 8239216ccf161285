package minilm

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
)

// TestFamilyOf selects the family from model_type or architectures, and
// refuses what no family runs with the reason.
func TestFamilyOf(t *testing.T) {
	pad := 1
	bertCfg := hf.Config{HiddenAct: "gelu", TypeVocabSize: 2, IntermediateSize: 8, LayerNormEps: 1e-12, MaxPositionEmbeddings: 64}
	with := func(f func(*hf.Config)) hf.Config {
		c := bertCfg
		f(&c)
		return c
	}
	for name, c := range map[string]struct {
		cfg  hf.Config
		want string // family name, or a fragment of the error
		ok   bool
	}{
		"bert":              {with(func(c *hf.Config) { c.ModelType = "bert" }), "bert", true},
		"no model_type":     {bertCfg, "bert", true},
		"bert architecture": {with(func(c *hf.Config) { c.Architectures = []string{"BertModel"} }), "bert", true},
		"xlm-roberta":       {with(func(c *hf.Config) { c.ModelType = "xlm-roberta"; c.PadTokenID = &pad }), "xlm-roberta", true},
		"xlm-roberta architecture": {with(func(c *hf.Config) {
			c.Architectures = []string{"XLMRobertaModel"}
			c.PadTokenID = &pad
		}), "xlm-roberta", true},
		"xlm-roberta without pad_token_id": {with(func(c *hf.Config) { c.ModelType = "xlm-roberta" }), "pad_token_id is missing", false},
		"bert without layer_norm_eps":      {with(func(c *hf.Config) { c.ModelType = "bert"; c.LayerNormEps = 0 }), "layer_norm_eps 0 must be positive", false},
		"bert with relu":                   {with(func(c *hf.Config) { c.ModelType = "bert"; c.HiddenAct = "relu" }), `hidden_act "relu" is not supported`, false},
		"unknown":                          {with(func(c *hf.Config) { c.ModelType = "t5" }), `model_type "t5" is not supported (supported: bert, `, false},
		"unknown architecture":             {with(func(c *hf.Config) { c.Architectures = []string{"T5EncoderModel"} }), "architectures [T5EncoderModel] name no supported family", false},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := familyOf(c.cfg)
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, c.want, f.name)
				return
			}
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// TestLoadRefusesUnsupportedFolders: a StaticEmbedding (model2vec) folder is
// named as such, not reported as a missing config.json.
func TestLoadRefusesUnsupportedFolders(t *testing.T) {
	ctx := context.Background()
	write := func(t *testing.T, dir, name, body string) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	static := t.TempDir()
	write(t, static, "modules.json", `[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}]`)
	write(t, static, "0_StaticEmbedding/model.safetensors", "")
	_, err := Load(ctx, static, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "StaticEmbedding")
	assert.NotContains(t, err.Error(), "config.json: no such file")

	// model2vec writes a config.json of its own.
	write(t, static, "config.json", `{"model_type": "model2vec", "hidden_dim": 256}`)
	_, err = Load(ctx, static, Options{Threads: 1})
	assert.ErrorContains(t, err, "StaticEmbedding")

}

// TestLoadRefusesRemoteCode names the model type of a model that needs
// trust_remote_code.
func TestLoadRefusesRemoteCode(t *testing.T) {
	for typ, want := range map[string]string{
		"nomic_bert":                       `model_type "nomic_bert" (nomic-embed's NomicBertModel) needs trust_remote_code`,
		"new":                              `model_type "new" (gte-multilingual's NewModel) needs trust_remote_code`,
		"jina_bert":                        `model_type "jina_bert" (jina-embeddings-v2's JinaBertModel) needs trust_remote_code`,
		"bert":                             `model_type "bert" (auto_map names its own modelling code) needs trust_remote_code`,
		"xlm-roberta-flash-implementation": `model_type "xlm-roberta-flash-implementation" (jina-embeddings-v3's XLMRobertaLoRA) needs trust_remote_code`,
	} {
		dir := t.TempDir()
		cfg := `{"model_type": "` + typ + `", "vocab_size": 30528, "n_embd": 768, "auto_map": {"AutoModel": "modeling.Model"}}`
		if typ == "xlm-roberta-flash-implementation" {
			// Known by its model_type alone, without an auto_map.
			cfg = `{"model_type": "` + typ + `", "vocab_size": 250002, "hidden_size": 1024}`
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.json"), []byte(`[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]`), 0o644))
		_, err := Load(context.Background(), dir, Options{Threads: 1})
		assert.ErrorContains(t, err, want)
	}
}

// TestFamilyWeightsMustMatchConfig: a folder whose weights are another
// family's, or miss a tensor, is refused naming the tensors.
func TestFamilyWeightsMustMatchConfig(t *testing.T) {
	ctx := context.Background()
	dir, _ := testmodel.EncoderFolder(t, "xlm-roberta")
	cfg := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	c["model_type"] = "mpnet"
	c["relative_attention_num_buckets"] = 32
	b, err = json.Marshal(c)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, b, 0o644))
	_, err = Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model.safetensors does not match config.json")
	assert.Contains(t, err.Error(), "missing encoder.layer.0.attention.attn.k.bias")

	dir, _ = testmodel.EncoderFolder(t, "modernbert")
	weights, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	delete(weights, "layers.2.attn_norm.weight")
	w := weights["layers.1.mlp.Wi.weight"]
	w.Shape = []int64{w.Shape[1], w.Shape[0]}
	weights["layers.1.mlp.Wi.weight"] = w
	require.NoError(t, hf.WriteSafetensors(filepath.Join(dir, "model.safetensors"), weights, nil))
	_, err = Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing layers.2.attn_norm.weight")
	assert.Contains(t, err.Error(), "layers.1.mlp.Wi.weight has shape [32 96], config needs [96 32]")
}

// TestXLMRobertaPositionsBoundMaxSeqLength: RoBERTa's positions start at
// padding_idx+1, so max_position_embeddings 66 holds 64 tokens; a folder
// that names no max_seq_length gets 64, and asking for more is refused.
func TestXLMRobertaPositionsBoundMaxSeqLength(t *testing.T) {
	ctx := context.Background()
	dir, _ := testmodel.EncoderFolder(t, "xlm-roberta")
	require.NoError(t, os.Remove(filepath.Join(dir, "sentence_bert_config.json")))
	tc := filepath.Join(dir, "tokenizer_config.json")
	b, err := os.ReadFile(tc)
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	delete(c, "model_max_length")
	b, err = json.Marshal(c)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(tc, b, 0o644))
	m, err := Load(ctx, dir, Options{Threads: 1})
	require.NoError(t, err)
	assert.Equal(t, 64, m.MaxSeqLength)
	m.Close()
	_, err = Load(ctx, dir, Options{Threads: 1, MaxSeqLength: 66})
	assert.ErrorContains(t, err, `max sequence length 66 exceeds the 64 positions model_type "xlm-roberta" has`)
}

// TestPaddingSideAgainstPooling: a folder whose tokenizer pads on the left
// loads when the side changes no vector (the *-left goldens, made by
// sentence-transformers on left-padded batches, are checked by
// TestEncoderFamiliesMatchSentenceTransformers), and is refused, naming
// padding_side, where sentence-transformers' vectors would depend on the
// batch: cls pooling, and BERT's positions counted from the first column.
func TestPaddingSideAgainstPooling(t *testing.T) {
	ctx := context.Background()
	setJSON := func(t *testing.T, path string, fields map[string]any) {
		t.Helper()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var c map[string]any
		require.NoError(t, json.Unmarshal(b, &c))
		for k, v := range fields {
			c[k] = v
		}
		b, err = json.Marshal(c)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	left := map[string]any{"padding_side": "left"}

	for _, family := range []string{"qwen3-left", "gemma3_text-left", "xlm-roberta-left", "mpnet-left", "modernbert-left"} {
		dir, _ := testmodel.EncoderFolder(t, family)
		f, err := hf.ReadFolder(dir)
		require.NoError(t, err)
		require.Equal(t, hf.PadLeft, f.PaddingSide, family)
	}

	bertDir, _ := testmodel.AssembleFamily(t, "dense-tanh-normalize")
	f, err := hf.ReadFolder(bertDir)
	require.NoError(t, err)
	require.Equal(t, hf.PadRight, f.PaddingSide, "absent: right")
	setJSON(t, filepath.Join(bertDir, "tokenizer_config.json"), left)
	_, err = Load(ctx, bertDir, Options{Threads: 1})
	assert.ErrorContains(t, err, `pads on the left (padding_side "left") but model_type "bert" numbers positions from the first column`)
	setJSON(t, filepath.Join(bertDir, "tokenizer_config.json"), map[string]any{"padding_side": "right"})
	m, err := Load(ctx, bertDir, Options{Threads: 1})
	require.NoError(t, err)
	m.Close()
	setJSON(t, filepath.Join(bertDir, "tokenizer_config.json"), map[string]any{"padding_side": "middle"})
	_, err = Load(ctx, bertDir, Options{Threads: 1})
	assert.ErrorContains(t, err, `tokenizer_config.json: padding_side "middle" is not right or left`)

	// cls pooling on a left-padding decoder folder: ST would pool padding.
	qwen, _ := testmodel.EncoderFolder(t, "qwen3-left")
	setJSON(t, filepath.Join(qwen, "1_Pooling", "config.json"), map[string]any{"pooling_mode": "cls"})
	_, err = Load(ctx, qwen, Options{Threads: 1})
	assert.ErrorContains(t, err, `pads on the left (padding_side "left") but 1_Pooling pools the first token (cls)`)
}

// TestLoadRefusesUnsupportedAttention: a golden folder whose config.json
// asks for an attention or position variant its family does not run is
// refused at load, naming the field and the model_type.
func TestLoadRefusesUnsupportedAttention(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		family string
		fields map[string]any
		want   string
	}{
		{"xlm-roberta", map[string]any{"position_embedding_type": "relative_key"}, `(model_type "xlm-roberta"): position_embedding_type "relative_key" is not supported`},
		{"qwen3", map[string]any{"use_sliding_window": true}, `(model_type "qwen3"): use_sliding_window is not supported`},
		{"qwen3", map[string]any{"attention_bias": true}, `(model_type "qwen3"): attention_bias must be false`},
		{"qwen3", map[string]any{"rope_parameters": map[string]any{"rope_type": "yarn", "rope_theta": 1e6, "factor": 4}}, `rope_parameters.rope_type "yarn" is not supported`},
		{"qwen3", map[string]any{"num_key_value_heads": 3}, "num_key_value_heads 3 must divide num_attention_heads 4"},
		{"gemma3_text", map[string]any{"attn_logit_softcapping": 50.0}, `(model_type "gemma3_text"): attn_logit_softcapping is not supported`},
		{"gemma3_text", map[string]any{"layer_types": []string{"sliding_attention", "chunked_attention", "sliding_attention"}}, `layer_types[1] "chunked_attention" is not supported`},
		{"gemma3_text", map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": 8}}, "rope_scaling is not supported"},
		{"modernbert", map[string]any{"attention_bias": true}, `(model_type "modernbert"): norm_bias, attention_bias and mlp_bias must be false`},
		{"mpnet", map[string]any{"relative_attention_num_buckets": 64}, `relative_attention_num_buckets 64 is not supported`},
	} {
		t.Run(c.family+"/"+c.want, func(t *testing.T) {
			dir, _ := testmodel.EncoderFolder(t, c.family)
			path := filepath.Join(dir, "config.json")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			var cfg map[string]any
			require.NoError(t, json.Unmarshal(b, &cfg))
			for k, v := range c.fields {
				cfg[k] = v
			}
			b, err = json.Marshal(cfg)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, b, 0o644))
			_, err = Load(ctx, dir, Options{Threads: 1})
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// TestDecoderWeightsMustMatchConfig: a decoder folder whose weights miss a
// tensor, have another shape, or are another family's is refused naming
// the tensors.
func TestDecoderWeightsMustMatchConfig(t *testing.T) {
	ctx := context.Background()
	dir, _ := testmodel.EncoderFolder(t, "qwen3")
	weights, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	delete(weights, "layers.1.self_attn.q_norm.weight")
	w := weights["layers.0.mlp.down_proj.weight"]
	w.Shape = []int64{w.Shape[1], w.Shape[0]}
	weights["layers.0.mlp.down_proj.weight"] = w
	require.NoError(t, hf.WriteSafetensors(filepath.Join(dir, "model.safetensors"), weights, nil))
	_, err = Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model.safetensors does not match config.json")
	assert.Contains(t, err.Error(), "missing layers.1.self_attn.q_norm.weight")
	assert.Contains(t, err.Error(), "layers.0.mlp.down_proj.weight has shape [64 32], config needs [32 64]")

	// Gemma 3's weights under Qwen3's model_type: every tensor Qwen3 reads
	// is there with its shape, but Gemma's sandwich norms are not Qwen3's
	// and would be dropped.
	dir, _ = testmodel.EncoderFolder(t, "gemma3_text")
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	cfg["model_type"] = "qwen3"
	cfg["hidden_act"] = "silu"
	delete(cfg, "layer_types")
	delete(cfg, "sliding_window")
	cfg["rope_parameters"] = map[string]any{"rope_type": "default", "rope_theta": 1e6}
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	_, err = Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model.safetensors does not match config.json")
	assert.Contains(t, err.Error(), `layers.0.pre_feedforward_layernorm.weight is not a weight of model_type "qwen3"`)
}

// TestPaddingRows: the rows each family's transformers model builds with
// nn.Embedding's padding_idx, on the golden folders' configs.
func TestPaddingRows(t *testing.T) {
	ctx := context.Background()
	want := map[string]map[string]int64{
		"bert-e5":     {"embeddings.word_embeddings.weight": 0},
		"xlm-roberta": {"embeddings.word_embeddings.weight": 1, "embeddings.position_embeddings.weight": 1},
		"mpnet":       {"embeddings.word_embeddings.weight": 1, "embeddings.position_embeddings.weight": 1},
		"modernbert":  {"embeddings.tok_embeddings.weight": 0},
		"qwen3":       {"embed_tokens.weight": 0},
		"gemma3_text": {"embed_tokens.weight": 0},
	}
	for family, rows := range want {
		dir, _ := testmodel.EncoderFolder(t, family)
		m, err := Load(ctx, dir, Options{Threads: 1})
		require.NoError(t, err)
		assert.Equal(t, rows, m.PaddingRows(), family)
		m.Close()
	}
}
