package corpus

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/vecmath"
)

// faqRow is a Debian FAQ entry of testdata/data, in file order.
type faqRow struct {
	ID, Question, Answer string
}

func faqRows(t testing.TB) []faqRow {
	t.Helper()
	pairs, err := dataset.Load(filepath.Join("..", "testdata", "data", "debian-faq.jsonl"))
	require.NoError(t, err)
	rows := make([]faqRow, len(pairs))
	for i, p := range pairs {
		rows[i] = faqRow{ID: fmt.Sprintf("faq-%d", i), Question: p.Anchor, Answer: p.Positive}
	}
	return rows
}

func faqAnswers(t testing.TB) []string {
	var out []string
	for _, r := range faqRows(t) {
		out = append(out, r.Answer)
	}
	return out
}

func scoreOf(x *Index, q []float32, i int) float32 {
	return vecmath.Dot(vecmath.Normalized(q), x.Vector(i))
}

func TestSearchIsExactTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, dim = 500, 16
	vecs := make([][]float32, n)
	chunks := make([]Chunk, n)
	for i := range vecs {
		vecs[i] = make([]float32, dim)
		for j := range vecs[i] {
			vecs[i][j] = float32(rng.NormFloat64())
		}
		if i%50 == 7 {
			copy(vecs[i], vecs[i-1]) // exact ties keep index order
		}
		chunks[i].ID = string(rune('a' + i%26))
	}
	x, err := FromVectors(Info{}, chunks, vecs)
	require.NoError(t, err)
	q := vecs[42]
	all := make([]Hit, n)
	for i := range all {
		all[i] = Hit{i, scoreOf(x, q, i)}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Score > all[b].Score })
	for _, k := range []int{1, 5, 50, n, n + 10} {
		got, err := x.Search(q, k)
		require.NoError(t, err)
		assert.Equal(t, all[:min(k, n)], got, "k=%d", k)
	}
	assert.Equal(t, 42, all[0].Chunk)

	_, err = x.Search(q[:3], 1)
	assert.ErrorContains(t, err, "dimensions")
	_, err = x.Search(q, 0)
	assert.Error(t, err)
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "faq.index")
	chunks := []Chunk{{ID: "a#0", Doc: "a", Text: "hello", End: 5, Tokens: 1}, {ID: "b#0", Doc: "b", Title: "B", Text: "wörld", End: 6, Tokens: 1}}
	prompt := "passage: "
	x, err := FromVectors(Info{Model: "m", ModelFingerprint: "abc", MaxSeqLength: 256, Chunking: Chunking{MaxTokens: 254, Overlap: 31}, Documents: 2, DocumentPrompt: &prompt},
		chunks, [][]float32{{3, 4}, {1, 0}})
	require.NoError(t, err)
	require.NoError(t, x.Save(path))
	y, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, x.Info, y.Info)
	assert.Equal(t, x.Chunks, y.Chunks)
	assert.Equal(t, []float32{0.6, 0.8}, y.Vector(0), "stored normalised")

	// A truncated file is an error, and a failed save keeps the old index.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	bad := filepath.Join(dir, "bad.index")
	require.NoError(t, os.WriteFile(bad, data[:len(data)-3], 0o644))
	_, err = Load(bad)
	assert.ErrorContains(t, err, "load index")
	_, err = Load(filepath.Join(dir, "missing.index"))
	assert.Error(t, err)

	// A safetensors file that is not an index says so.
	require.NoError(t, hf.WriteSafetensors(bad, map[string]hf.RawTensor{}, nil))
	_, err = Load(bad)
	assert.ErrorContains(t, err, "not an embtune index")

	assert.Error(t, x.Save(filepath.Join(dir, "no-such-folder", "x.index")))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".tmp"), "leftover %s", e.Name())
	}
}

func TestCheckDocumentPrompt(t *testing.T) {
	none, passage := "", "passage: "
	assert.NoError(t, CheckDocumentPrompt(Info{}, "anything"), "an index from before the record passes")
	assert.NoError(t, CheckDocumentPrompt(Info{DocumentPrompt: &passage}, "passage: "))
	assert.NoError(t, CheckDocumentPrompt(Info{DocumentPrompt: &none}, ""))
	assert.ErrorContains(t, CheckDocumentPrompt(Info{DocumentPrompt: &passage}, ""),
		`embedded with document prompt "passage: ", and this run's document prompt is "": pass --document-prompt "passage: "`)
	assert.ErrorContains(t, CheckDocumentPrompt(Info{DocumentPrompt: &none}, "passage: "), `pass --document-prompt ""`)
}

func TestCheckModelMismatch(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("weights"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("{}"), 0o644))
	fp, err := ModelFingerprint(dir)
	require.NoError(t, err)
	x := &Index{Info: Info{Model: "/models/a", ModelFingerprint: fp}}
	require.NoError(t, x.CheckModel(dir))
	// Same weights, another tokenizer: another model.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"x":1}`), 0o644))
	assert.ErrorContains(t, x.CheckModel(dir), "rebuild the index")
	assert.ErrorContains(t, x.CheckModel(filepath.Join(dir, "nope")), "model fingerprint")
}
