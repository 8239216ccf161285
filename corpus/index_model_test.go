//go:build cgo

// The tests that load the model (libtorch); the chunking and index-file
// tests beside them run without cgo.

package corpus

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
)

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

// TestBuildFindsTheAnswer indexes the Debian FAQ's answers as documents,
// chunked to 126 word pieces, and checks that the index finds what
// util.semantic_search finds and that each chunk is a piece of its answer.
func TestBuildFindsTheAnswer(t *testing.T) {
	rows := faqRows(t)[:40]
	m := loadModel(t, 128)
	model := Model{Folder: m.Folder, Text: m.Text(), Encoder: m}
	var docs []Document
	for _, r := range rows {
		docs = append(docs, Document{ID: r.ID, Text: r.Answer})
	}
	var calls int
	x, st, err := Build(context.Background(), model, docs, DefaultChunking(model.Text), 16, func(done, total int) {
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

	_, _, err = Build(context.Background(), model, docs, Chunking{MaxTokens: 200}, 0, nil)
	assert.ErrorContains(t, err, "max_seq_length")
	_, _, err = Build(context.Background(), model, []Document{{ID: "x", Text: " \n "}}, DefaultChunking(model.Text), 0, nil)
	assert.ErrorContains(t, err, "no text")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = Build(ctx, model, docs, DefaultChunking(model.Text), 0, nil)
	assert.ErrorIs(t, err, context.Canceled)
}
