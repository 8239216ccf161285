package hf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/internal/testmodel"
)

// TestReadFolderFamilies reads every golden head variant (see
// tools/golden/families.py) and checks what sentence-transformers reported
// for it: embedding width, max_seq_length, prompts.
func TestReadFolderFamilies(t *testing.T) {
	for _, v := range testmodel.FamilyVariants(t) {
		t.Run(v, func(t *testing.T) {
			dir, g := testmodel.AssembleFamily(t, v)
			f, err := ReadFolder(dir)
			require.NoError(t, err)
			assert.Equal(t, g.Dim, f.Dim())
			assert.Equal(t, g.MaxSeqLength, f.MaxSeqLength)
			assert.Equal(t, g.Prompts, f.Prompts)
			want := ""
			if g.DefaultPromptName != nil {
				want = *g.DefaultPromptName
			}
			assert.Equal(t, want, f.DefaultPromptName)
			dim, maxSeq, err := EmbeddingShape(dir)
			require.NoError(t, err)
			assert.Equal(t, g.Dim, dim)
			assert.Equal(t, g.MaxSeqLength, maxSeq)
		})
	}
}

func TestReadFolderLegacyAndNewPooling(t *testing.T) {
	dir, _ := testmodel.AssembleFamily(t, "cls-mean-max") // legacy booleans
	f, err := ReadFolder(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{PoolCLS, PoolMax, PoolMean}, f.Pooling.Modes)
	write(t, filepath.Join(dir, "1_Pooling", "config.json"),
		`{"embedding_dimension": 32, "pooling_mode": ["max", "cls"], "include_prompt": true}`)
	f, err = ReadFolder(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{PoolMax, PoolCLS}, f.Pooling.Modes, "ST 6 keeps the listed order")
	write(t, filepath.Join(dir, "1_Pooling", "config.json"), `{"word_embedding_dimension": 32}`)
	f, err = ReadFolder(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{PoolMean}, f.Pooling.Modes, "no mode set means mean")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// TestReadFolderRefusesWhatItCannotHonour: each edit makes the folder
// declare something embtune would otherwise run differently; the error
// names the file and the thing.
func TestReadFolderRefusesWhatItCannotHonour(t *testing.T) {
	cases := []struct {
		name, variant, file, content string
		want                         []string
	}{
		{"unknown pooling mode", "mean", "1_Pooling/config.json",
			`{"embedding_dimension": 32, "pooling_mode": "median"}`, []string{"1_Pooling/config.json", `unknown pooling mode "median"`}},
		{"pooling mode of the wrong type", "mean", "1_Pooling/config.json",
			`{"embedding_dimension": 32, "pooling_mode": 3}`, []string{"1_Pooling/config.json", "pooling_mode must be"}},
		{"include_prompt false", "mean", "1_Pooling/config.json",
			`{"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": false}`, []string{"include_prompt false"}},
		{"pooling width", "mean", "1_Pooling/config.json",
			`{"embedding_dimension": 16, "pooling_mode": "mean"}`, []string{"word_embedding_dimension 16 does not match hidden_size 32"}},
		{"unsupported module", "mean", "modules.json",
			`[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			  {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
			  {"idx":2,"name":"2","path":"2_LayerNorm","type":"sentence_transformers.models.LayerNorm"}]`,
			[]string{"modules.json", `module type "sentence_transformers.models.LayerNorm" is not supported`}},
		{"Dense after Normalize", "dense-tanh-normalize", "modules.json",
			`[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			  {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
			  {"idx":2,"name":"2","path":"3_Normalize","type":"sentence_transformers.models.Normalize"},
			  {"idx":3,"name":"3","path":"2_Dense","type":"sentence_transformers.models.Dense"}]`,
			[]string{"modules.json", "out of place"}},
		{"unknown activation", "dense-tanh-normalize", "2_Dense/config.json",
			`{"in_features": 32, "out_features": 16, "bias": true, "activation_function": "torch.nn.modules.activation.Softsign"}`,
			[]string{"2_Dense/config.json", `activation_function "torch.nn.modules.activation.Softsign" is not supported`}},
		{"custom activation", "dense-tanh-normalize", "2_Dense/config.json",
			`{"in_features": 32, "out_features": 16, "activation_function": "mypackage.Swish"}`,
			[]string{"2_Dense/config.json", "not supported"}},
		{"Dense in_features", "dense-tanh-normalize", "2_Dense/config.json",
			`{"in_features": 30, "out_features": 16}`, []string{"2_Dense/config.json", "in_features 30 does not match the 32"}},
		{"Dense residual", "dense-tanh-normalize", "2_Dense/config.json",
			`{"in_features": 32, "out_features": 16, "use_residual": true}`, []string{"use_residual"}},
		{"similarity", "mean", "config_sentence_transformers.json",
			`{"similarity_fn_name": "euclidean"}`, []string{"config_sentence_transformers.json", `similarity_fn_name "euclidean"`}},
		{"dot without Normalize", "mean", "config_sentence_transformers.json",
			`{"similarity_fn_name": "dot"}`, []string{`similarity_fn_name "dot"`}},
		{"default prompt not defined", "mean", "config_sentence_transformers.json",
			`{"prompts": {"query": "q: "}, "default_prompt_name": "classification"}`,
			[]string{"config_sentence_transformers.json", `default_prompt_name "classification"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := testmodel.AssembleFamily(t, c.variant)
			write(t, filepath.Join(dir, c.file), c.content)
			_, err := ReadFolder(dir)
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestDenseWeightsFile(t *testing.T) {
	dir, _ := testmodel.AssembleFamily(t, "dense-tanh-normalize")
	f, err := ReadFolder(dir)
	require.NoError(t, err)
	require.Len(t, f.Dense, 1)
	p, err := f.Dense[0].WeightsFile(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "2_Dense", "model.safetensors"), p)
	require.NoError(t, os.Rename(p, filepath.Join(dir, "2_Dense", "pytorch_model.bin")))
	_, err = f.Dense[0].WeightsFile(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pytorch_model.bin")
}

func TestResolvePrompt(t *testing.T) {
	dir, _ := testmodel.AssembleFamily(t, "prompts-default")
	f, err := ReadFolder(dir)
	require.NoError(t, err)
	lit := "literal: "
	cases := []struct {
		c    PromptChoice
		role PromptRole
		want string
	}{
		{PromptChoice{}, RoleDefault, "classify this:"},
		{PromptChoice{}, RoleQuery, "query: "},
		{PromptChoice{}, RoleDocument, "document: "},
		{PromptChoice{Name: "query"}, RoleDocument, "query: "},
		{PromptChoice{Text: &lit}, RoleQuery, "literal: "},
	}
	for _, c := range cases {
		got, err := f.ResolvePrompt(c.c, c.role)
		require.NoError(t, err)
		assert.Equal(t, c.want, got)
	}
	_, err = f.ResolvePrompt(PromptChoice{Name: "nope"}, RoleQuery)
	require.ErrorIs(t, err, ErrUnknownPrompt)
	assert.Contains(t, err.Error(), `"nope"`)
	_, err = f.ResolvePrompt(PromptChoice{Name: "query", Text: &lit}, RoleQuery)
	require.Error(t, err)
}
