package corpus

import (
	"context"
	"encoding/json"
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
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

// faqRow is a Debian FAQ entry of shared/data, in file order.
type faqRow struct {
	ID, Question, Answer string
}

func faqRows(t testing.TB) []faqRow {
	t.Helper()
	pairs, err := dataset.Load(filepath.Join("..", "..", "shared", "data", "debian-faq.jsonl"))
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

func loadModel(t testing.TB, maxSeq int) *minilm.Model {
	t.Helper()
	m, err := minilm.Load(context.Background(), testmodel.Dir(t), minilm.Options{MaxSeqLength: maxSeq})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

// TestSearchMatchesSemanticSearch compares with sentence-transformers'
// util.semantic_search: the Debian FAQ's 120 questions against its 120
// answers, top 10 (testdata/golden/search.json, generate.py search).
func TestSearchMatchesSemanticSearch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "search.json"))
	require.NoError(t, err)
	var golden struct {
		MaxSeqLength int `json:"max_seq_length"`
		TopK         int `json:"top_k"`
		Hits         [][]struct {
			CorpusID int     `json:"corpus_id"`
			Score    float64 `json:"score"`
		} `json:"hits"`
	}
	require.NoError(t, json.Unmarshal(raw, &golden))
	rows := faqRows(t)
	require.Len(t, golden.Hits, len(rows))

	m := loadModel(t, golden.MaxSeqLength)
	ctx := context.Background()
	var questions, answers []string
	chunks := make([]Chunk, len(rows))
	for i, r := range rows {
		questions = append(questions, r.Question)
		answers = append(answers, r.Answer)
		chunks[i] = Chunk{ID: r.ID, Doc: r.ID, Text: r.Answer, End: len(r.Answer)}
	}
	cv, err := m.Encode(ctx, answers, 0)
	require.NoError(t, err)
	x, err := FromVectors(Info{}, chunks, cv)
	require.NoError(t, err)
	qv, err := m.Encode(ctx, questions, 0)
	require.NoError(t, err)
	for i, want := range golden.Hits {
		got, err := x.Search(qv[i], golden.TopK)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for r := range want {
			assert.InDelta(t, want[r].Score, got[r].Score, 1e-5, "query %d rank %d", i, r)
			if got[r].Chunk != want[r].CorpusID {
				// Only a near-tie may swap places.
				assert.InDelta(t, want[r].Score, float64(scoreOf(x, qv[i], want[r].CorpusID)), 2e-5,
					"query %d rank %d: chunk %d, ST has %d", i, r, got[r].Chunk, want[r].CorpusID)
			}
		}
	}
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
	x, err := FromVectors(Info{Model: "m", ModelFingerprint: "abc", MaxSeqLength: 256, Chunking: Chunking{MaxTokens: 254, Overlap: 31}, Documents: 2},
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
	require.NoError(t, minilm.WriteSafetensors(bad, map[string]minilm.RawTensor{}, nil))
	_, err = Load(bad)
	assert.ErrorContains(t, err, "not an embtune index")

	assert.Error(t, x.Save(filepath.Join(dir, "no-such-folder", "x.index")))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".tmp"), "leftover %s", e.Name())
	}
}

// TestBuildFindsTheAnswer indexes the Debian FAQ's answers as documents,
// chunked to 126 word pieces, and checks that the index finds what
// util.semantic_search finds and that each chunk is a piece of its answer.
func TestBuildFindsTheAnswer(t *testing.T) {
	rows := faqRows(t)[:40]
	m := loadModel(t, 128)
	var docs []Document
	for _, r := range rows {
		docs = append(docs, Document{ID: r.ID, Text: r.Answer})
	}
	var calls int
	x, st, err := Build(context.Background(), m, docs, DefaultChunking(m), 16, func(done, total int) {
		calls++
		assert.LessOrEqual(t, done, total)
	})
	require.NoError(t, err)
	assert.Positive(t, calls)
	assert.Equal(t, 40, st.Documents)
	assert.Greater(t, st.Chunks, 40, "long answers are split")
	assert.Zero(t, st.Truncated)
	assert.Equal(t, Chunking{MaxTokens: 126, Overlap: 15}, x.Info.Chunking)
	fp, err := ModelFingerprint(testmodel.Dir(t))
	require.NoError(t, err)
	assert.Equal(t, fp, x.Info.ModelFingerprint)
	require.NoError(t, x.CheckModel(testmodel.Dir(t)))

	byID := map[string]string{}
	for _, r := range rows {
		byID[r.ID] = r.Answer
	}
	for _, c := range x.Chunks {
		assert.Equal(t, byID[c.Doc][c.Start:c.End], c.Text)
		assert.LessOrEqual(t, c.Tokens, 126)
	}
	// Each chunk's vector is the model's embedding of its text.
	v, err := m.Encode(context.Background(), []string{x.Chunks[3].Text}, 0)
	require.NoError(t, err)
	assert.InDeltaSlice(t, v[0], x.Vector(3), 1e-5)

	q, err := m.Encode(context.Background(), []string{rows[0].Question}, 0)
	require.NoError(t, err)
	hits, err := x.Search(q[0], 3)
	require.NoError(t, err)
	assert.Equal(t, rows[0].ID, x.Chunks[hits[0].Chunk].Doc)

	_, _, err = Build(context.Background(), m, docs, Chunking{MaxTokens: 200}, 0, nil)
	assert.ErrorContains(t, err, "max_seq_length")
	_, _, err = Build(context.Background(), m, []Document{{ID: "x", Text: " \n "}}, DefaultChunking(m), 0, nil)
	assert.ErrorContains(t, err, "no text")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = Build(ctx, m, docs, DefaultChunking(m), 0, nil)
	assert.ErrorIs(t, err, context.Canceled)
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
