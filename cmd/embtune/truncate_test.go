package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/minilm"
)

// TestTruncateDimMatchesSentenceTransformers encodes the golden texts with
// the encoder every command wraps for --truncate-dim and compares them with
// SentenceTransformer(model, truncate_dim=N).encode(normalize_embeddings=True)
// (testdata/golden/truncate.json, tools/golden/generate.py truncate).
func TestTruncateDimMatchesSentenceTransformers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "truncate.json"))
	require.NoError(t, err)
	var g struct {
		Texts []string `json:"texts"`
		Dims  map[string]struct {
			Normalized [][]float64 `json:"normalized"`
			RawNorms   []float64   `json:"raw_norms"`
		} `json:"dims"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Dims)
	ctx := context.Background()
	m, err := minilm.Load(ctx, modelDir(t), minilm.Options{})
	require.NoError(t, err)
	defer m.Close()
	for name, want := range g.Dims {
		dim, err := strconv.Atoi(name)
		require.NoError(t, err)
		enc, err := truncating(m, dim, m.Dim())
		require.NoError(t, err)
		got, err := enc.Encode(ctx, g.Texts, 0)
		require.NoError(t, err)
		require.Len(t, got, len(want.Normalized))
		worst := 0.0
		for i := range got {
			require.Len(t, got[i], dim, "text %d", i)
			for j, x := range want.Normalized[i] {
				d := float64(got[i][j]) - x
				worst = max(worst, max(d, -d))
			}
		}
		t.Logf("dim %d: %d texts, max |diff| %.2g against sentence-transformers", dim, len(got), worst)
		assert.LessOrEqual(t, worst, 1e-5, "dim %d: max |diff| against sentence-transformers", dim)
		if dim < m.Dim() {
			assert.Less(t, want.RawNorms[0], 1.0, "ST does not re-normalise after truncate_dim by default")
		}
	}
}

// TestTruncateDimCommands runs --truncate-dim through encode, eval, index,
// query and serve, and its errors.
func TestTruncateDimCommands(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	code, out, stderr := runCLI(ctx, []string{"encode", "--model", m, "--truncate-dim", "64"}, "first text\nsecond\n")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var v []float32
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &v))
	assert.Len(t, v, 64)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"encode", "--truncate-dim", "385"}, "truncate dim 385 is larger than the model's embedding dimension 384"},
		{[]string{"encode", "--truncate-dim", "-1"}, "--truncate-dim must be at least 1"},
		{[]string{"serve", "--truncate-dim", "1000", "--addr", "127.0.0.1:0"}, "truncate dim 1000 is larger than the model's embedding dimension 384"},
	} {
		code, _, stderr := runCLI(ctx, append(c.args, "--model", m), "x\n")
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, "%v", c.args)
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "pairs.jsonl")
	writeFile(t, data, `{"question":"How do I install a package?","answer":"Use apt-get install followed by the package name."}
{"question":"Which boot loader does Debian use?","answer":"GRUB is the default boot loader."}
{"question":"Which MTA does Debian use?","answer":"Exim is the default mail transfer agent."}
`)
	code, out, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--truncate-dim", "32"}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "ndcg@10")
	code, _, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--truncate-dim", "400"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "larger than the model's embedding dimension 384")

	writeFile(t, filepath.Join(dir, "docs", "apt.md"), "# APT\n\nUse apt-get install to install a package.\n")
	writeFile(t, filepath.Join(dir, "docs", "boot.txt"), "The boot loader is GRUB. It reads /boot/grub/grub.cfg at start-up.")
	idx := filepath.Join(dir, "docs.index")
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--output", idx, "--truncate-dim", "128", filepath.Join(dir, "docs")}, "")
	require.Equal(t, 0, code, stderr)
	x, err := corpus.Load(idx)
	require.NoError(t, err)
	assert.Equal(t, 128, x.Info.Dim, "the index records its dimension")
	assert.InDelta(t, 1, squaredNorm(x.Vector(0)), 1e-5)

	// Without --truncate-dim, query reads the dimension from the index.
	code, out, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--top-k", "1", "grub configuration"}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "boot.txt")
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--truncate-dim", "128", "grub"}, "")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", idx, "--truncate-dim", "64", "grub"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the index holds 128-dimensional embeddings but --truncate-dim gives 64")
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", m, "--index", idx, "--addr", "127.0.0.1:0"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the index holds 128-dimensional embeddings but the model gives 384: give --truncate-dim 128")

	// A full-dimension index refuses truncated queries.
	full := filepath.Join(dir, "full.index")
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--output", full, filepath.Join(dir, "docs")}, "")
	require.Equal(t, 0, code, stderr)
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--index", full, "--truncate-dim", "128", "grub"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the index holds 384-dimensional embeddings but --truncate-dim gives 128")

	// serve with EMBTUNE_TRUNCATE_DIM and the matching index answers /search
	// and returns 128-dimensional vectors.
	addr := freeAddr(t)
	t.Setenv("EMBTUNE_TRUNCATE_DIM", "128")
	t.Setenv("EMBTUNE_INDEX", idx)
	t.Setenv("EMBTUNE_MODEL", m)
	t.Setenv("EMBTUNE_ADDR", addr)
	url := runServeUntilReady(t, addr)
	resp, err := http.Post(url+"/search", "application/json", strings.NewReader(`{"query": "grub configuration", "top_k": 1}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "boot.txt")
	resp, err = http.Post(url+"/invocations", "application/json", strings.NewReader(`{"inputs": ["a"]}`))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var inv struct{ Embeddings [][]float32 }
	require.NoError(t, json.Unmarshal(body, &inv))
	require.Len(t, inv.Embeddings, 1)
	assert.Len(t, inv.Embeddings[0], 128)
}

func squaredNorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}
