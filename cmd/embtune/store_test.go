package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/pgstore/pgtest"
)

func queryJSON(t *testing.T, args ...string) []corpus.Result {
	t.Helper()
	code, out, stderr := runCLI(context.Background(), append([]string{"query", "--json"}, args...), "")
	require.Equal(t, 0, code, stderr)
	var res []corpus.Result
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r corpus.Result
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		res = append(res, r)
	}
	return res
}

func hitIDs(rs []corpus.Result) [][]string {
	var out [][]string
	for _, r := range rs {
		var ids []string
		for _, h := range r.Hits {
			ids = append(ids, h.ID)
		}
		out = append(out, ids)
	}
	return out
}

// TestStoreCommands: index --store and query --store against a real
// PostgreSQL answer as the index file does; a re-run embeds nothing; the
// Batch Transform path (--write-chunks, then --from-embeddings) builds the
// same store without embedding.
func TestStoreCommands(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "docs", "apt.md"), "# APT\n\nUse apt-get install to install a package. Use apt-get remove to remove it.\n")
	writeFile(t, filepath.Join(dir, "docs", "boot.txt"), "The boot loader is GRUB. It reads /boot/grub/grub.cfg at start-up.")
	writeFile(t, filepath.Join(dir, "docs", "more.jsonl"), `{"id":"mail","text":"Exim is the default mail transfer agent."}`+"\n")
	idx := filepath.Join(dir, "docs.index")
	chunking := []string{"--chunk-size", "20", "--chunk-overlap", "0", filepath.Join(dir, "docs")}

	code, _, stderr := runCLI(ctx, append([]string{"index", "--model", m, "--output", idx}, chunking...), "")
	require.Equal(t, 0, code, stderr)
	code, out, stderr := runCLI(ctx, append([]string{"index", "--model", m, "--store", pg.URL}, chunking...), "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "stored 5 chunks (5 embedded, 0 already there) in table embtune_chunks")
	code, out, stderr = runCLI(ctx, append([]string{"index", "--model", m, "--store", pg.URL}, chunking...), "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "(0 embedded, 5 already there)", "a re-run resumes: nothing to embed")

	queries := []string{"how do I install software?", "which MTA does Debian use?", "grub configuration file"}
	want := queryJSON(t, append([]string{"--model", m, "--index", idx, "--top-k", "5"}, queries...)...)
	exact := queryJSON(t, append([]string{"--model", m, "--store", pg.URL, "--exact", "--top-k", "5"}, queries...)...)
	assert.Equal(t, hitIDs(want), hitIDs(exact))
	for i := range want {
		for r := range want[i].Hits {
			assert.InDelta(t, want[i].Hits[r].Score, exact[i].Hits[r].Score, 1e-5)
			assert.Equal(t, want[i].Hits[r].Chunk, exact[i].Hits[r].Chunk)
		}
	}
	hnsw := queryJSON(t, append([]string{"--model", m, "--store", pg.URL, "--top-k", "5"}, queries...)...)
	assert.Equal(t, hitIDs(want), hitIDs(hnsw))

	other := t.TempDir()
	writeFile(t, filepath.Join(other, "model.safetensors"), "not the same weights")
	code, _, stderr = runCLI(ctx, []string{"query", "--model", other, "--store", pg.URL, "q"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "another model")
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", other, "--store", pg.URL, "--addr", "127.0.0.1:0"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "another model")
	code, _, stderr = runCLI(ctx, []string{"query", "--model", m, "--store", "postgres://embtune@127.0.0.1:1/x?connect_timeout=5", "q"}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "cannot connect")
	code, _, _ = runCLI(ctx, []string{"query", "--model", m, "--store", pg.URL, "--index", idx, "q"}, "")
	assert.Equal(t, 2, code, "--index and --store")

	// Batch Transform: chunks out, embeddings back in (.out files written
	// here as the server writes them: one JSON array per line).
	chunksDir, outDir := filepath.Join(dir, "chunks"), filepath.Join(dir, "out")
	code, out, stderr = runCLI(ctx, append([]string{"index", "--model", m, "--write-chunks", chunksDir}, chunking...), "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "wrote 5 chunks of 3 documents to 1 files")
	f, err := os.Open(filepath.Join(chunksDir, "chunks-00000.jsonl"))
	require.NoError(t, err)
	var texts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c corpus.Chunk
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		texts = append(texts, c.Text)
	}
	f.Close()
	model, err := minilm.Load(ctx, m, minilm.Options{Threads: 1})
	require.NoError(t, err)
	vecs, err := model.Encode(ctx, texts, 0)
	model.Close()
	require.NoError(t, err)
	var lines strings.Builder
	for _, v := range vecs {
		b, _ := json.Marshal(v)
		lines.Write(b)
		lines.WriteString("\n")
	}
	writeFile(t, filepath.Join(outDir, "chunks-00000.jsonl.out"), lines.String())
	fromIdx := filepath.Join(dir, "from.index")
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--from-embeddings", outDir, "--chunks", chunksDir, "--output", fromIdx}, "")
	require.Equal(t, 0, code, stderr)
	code, out, stderr = runCLI(ctx, []string{"index", "--model", m, "--from-embeddings", outDir, "--chunks", chunksDir, "--store", pg.URL, "--table", "from_transform"}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "stored 5 chunks")
	assert.Equal(t, hitIDs(want), hitIDs(queryJSON(t, append([]string{"--model", m, "--index", fromIdx, "--top-k", "5"}, queries...)...)))
	assert.Equal(t, hitIDs(want), hitIDs(queryJSON(t, append([]string{"--model", m, "--store", pg.URL, "--table", "from_transform", "--exact", "--top-k", "5"}, queries...)...)))
	code, _, stderr = runCLI(ctx, []string{"index", "--model", m, "--from-embeddings", outDir, "--output", fromIdx}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--chunks")
}
