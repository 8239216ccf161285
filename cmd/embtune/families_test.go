package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/internal/testmodel"
)

// TestEncodeRolesAndPrompts runs `embtune encode` on a folder with query,
// document and default prompts (tools/golden/families.py) and compares each
// --role with sentence-transformers' encode, encode_query and
// encode_document; a literal --query-prompt and unknown prompt names too.
func TestEncodeRolesAndPrompts(t *testing.T) {
	ctx := context.Background()
	dir, g := testmodel.AssembleFamily(t, "prompts-default")
	stdin := strings.Join(g.Texts[4:9], "\n") + "\n"
	encode := func(args ...string) [][]float64 {
		t.Helper()
		code, out, stderr := runCLI(ctx, append([]string{"encode", "--model", dir, "--threads", "1"}, args...), stdin)
		require.Equal(t, 0, code, stderr)
		var vecs [][]float64
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var v []float64
			require.NoError(t, json.Unmarshal([]byte(line), &v))
			vecs = append(vecs, v)
		}
		return vecs
	}
	near := func(want, got [][]float64, what string) {
		t.Helper()
		require.Len(t, got, len(want))
		for i := range want {
			for j := range want[i] {
				require.LessOrEqual(t, math.Abs(got[i][j]-want[i][j]), 1e-5, "%s: text %d", what, i)
			}
		}
	}
	near(g.Encode[4:9], encode(), "encode")
	near(g.EncodeQuery[4:9], encode("--role", "query"), "encode_query")
	near(g.EncodeDocument[4:9], encode("--role", "document"), "encode_document")
	near(g.EncodeQuery[4:9], encode("--prompt-name", "query"), "encode(prompt_name=query)")
	near(g.EncodeQuery[4:9], encode("--role", "document", "--document-prompt", "query: "), "a literal prompt")
	near(g.EncodeDocument[4:9], encode("--role", "query", "--query-prompt-name", "document"), "a prompt by name")

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--role", "query", "--query-prompt-name", "search_query"}, 1, `"search_query" is not in`},
		{[]string{"--prompt-name", "nope"}, 1, `"nope" is not in`},
		{[]string{"--role", "passage"}, 2, "--role must be default, query or document"},
		{[]string{"--role", "query", "--prompt", "x"}, 2, "--prompt and --prompt-name go with --role default"},
		{[]string{"--query-prompt", "x", "--query-prompt-name", "query"}, 2, "not both"},
	} {
		code, _, stderr := runCLI(ctx, append([]string{"encode", "--model", dir}, c.args...), stdin)
		assert.Equal(t, c.code, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, "%v", c.args)
	}
	// serve checks prompt names before it listens.
	code, _, stderr := runCLI(ctx, []string{"serve", "--model", dir, "--default-prompt-name", "nope", "--addr", "127.0.0.1:0"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--default-prompt-name")
	assert.Contains(t, stderr, `"nope"`)
}

// TestFamilyRefusalsCLI: a folder declaring what embtune cannot run is
// refused by name, never encoded differently.
func TestFamilyRefusalsCLI(t *testing.T) {
	ctx := context.Background()
	dir, _ := testmodel.AssembleFamily(t, "dense-tanh-normalize")
	writeFile(t, filepath.Join(dir, "2_Dense", "config.json"),
		`{"in_features": 32, "out_features": 16, "activation_function": "torch.nn.modules.activation.Softsign"}`)
	code, _, stderr := runCLI(ctx, []string{"encode", "--model", dir}, "hello\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "2_Dense/config.json")
	assert.Contains(t, stderr, "Softsign")

	dir, _ = testmodel.AssembleFamily(t, "mean")
	writeFile(t, filepath.Join(dir, "1_Pooling", "config.json"), `{"embedding_dimension": 32, "pooling_mode": "median"}`)
	code, _, stderr = runCLI(ctx, []string{"encode", "--model", dir}, "hello\n")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `unknown pooling mode "median"`)
}

// TestEvalThroughServerWithPrompts: eval through --encoder-url prepends the
// local folder's query and document prompts, so it scores as with the
// weights loaded; without prompts the table differs.
func TestEvalThroughServerWithPrompts(t *testing.T) {
	ctx := context.Background()
	dir, g := testmodel.AssembleFamily(t, "e5-prompts")
	var pairs strings.Builder
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&pairs, "{\"anchor\": %q, \"positive\": %q}\n", g.Texts[i+4], g.Texts[i+12])
	}
	data := filepath.Join(t.TempDir(), "pairs.jsonl")
	writeFile(t, data, pairs.String())
	url := startServe(t, "--model", dir)
	prompts := []string{"--document-prompt-name", "passage"}

	code, local, stderr := runCLI(ctx, append([]string{"eval", "--model", dir, "--data", data}, prompts...), "")
	require.Equal(t, 0, code, stderr)
	code, remote, stderr := runCLI(ctx, append([]string{"eval", "--model", dir, "--encoder-url", url, "--data", data}, prompts...), "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, local, remote)
	code, bare, stderr := runCLI(ctx, []string{"eval", "--model", dir, "--data", data, "--query-prompt", "", "--document-prompt", ""}, "")
	require.Equal(t, 0, code, stderr)
	assert.NotEqual(t, local, bare, "the prompts change the scores")

	// A default_prompt_name would be prepended by the server too: refused.
	dflt, _ := testmodel.AssembleFamily(t, "prompts-default")
	code, _, stderr = runCLI(ctx, []string{"eval", "--model", dflt, "--encoder-url", url, "--data", data}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "default_prompt_name")
}
