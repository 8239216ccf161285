package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/pgstore"
	"github.com/embtune/embtune/pgstore/pgtest"
)

// TestSearchFromStore: POST /search answers the same ids in the same order,
// with the same chunks and scores to 1e-5, from the index file and from a
// pgvector store (exact and HNSW) holding the same chunks; a store that
// stops being ready is a 503 that says why.
func TestSearchFromStore(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	docs := []string{
		"Use apt-get install to install a package.",
		"The boot loader is GRUB.",
		"Exim is the default mail transfer agent.",
		"dpkg -l lists the installed packages.",
		"Debian releases are named after Toy Story characters.",
	}
	chunks := make([]corpus.Chunk, len(docs))
	rows := make([]pgstore.Row, len(docs))
	vecs := encodeDirect(t, docs).Vectors
	for i, d := range docs {
		chunks[i] = corpus.Chunk{ID: string(rune('a'+i)) + "#0", Doc: string(rune('a' + i)), Text: d, End: len(d)}
		rows[i] = pgstore.Row{Ord: i, Chunk: chunks[i], Vector: vecs[i]}
	}
	info := corpus.Info{Model: "test", ModelFingerprint: "test", Dim: len(vecs[0])}
	index, err := corpus.FromVectors(info, chunks, vecs)
	require.NoError(t, err)
	st, err := pgstore.Open(ctx, pg.URL, pgstore.Options{})
	require.NoError(t, err)
	defer st.Close()
	w, err := st.Begin(ctx, info)
	require.NoError(t, err)
	require.NoError(t, w.Put(ctx, rows))
	_, err = w.Finish(ctx)
	require.NoError(t, err)

	searcher := func(exact bool) corpus.Searcher {
		s, err := pgstore.Open(ctx, pg.URL, pgstore.Options{Exact: exact})
		require.NoError(t, err)
		t.Cleanup(s.Close)
		q, err := s.Searcher(ctx, "test")
		require.NoError(t, err)
		return q
	}
	const req = `{"query": ["which MTA is the default?", "install software", "release names"], "top_k": 4}`
	var want searchResponse
	resp, body := postJSON(t, startReady(t, Config{Index: index}).url+"/search", req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	want.decode(t, body)
	for _, exact := range []bool{true, false} {
		resp, body := postJSON(t, startReady(t, Config{Store: searcher(exact)}).url+"/search", req)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var got searchResponse
		got.decode(t, body)
		require.Len(t, got.Results, len(want.Results))
		for i := range want.Results {
			require.Len(t, got.Results[i].Hits, 4)
			for r, h := range want.Results[i].Hits {
				g := got.Results[i].Hits[r]
				assert.Equal(t, h.Chunk, g.Chunk, "exact %v query %d rank %d", exact, i, r)
				assert.Equal(t, h.Rank, g.Rank)
				assert.InDelta(t, h.Score, g.Score, 1e-5)
			}
		}
	}

	// A writer starts again: the store is building, and /search says so.
	ts := startReady(t, Config{Store: searcher(false)})
	w, err = st.Begin(ctx, info)
	require.NoError(t, err)
	defer w.Close()
	resp, body = postJSON(t, ts.url+"/search", req)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, string(body), "re-run embtune index")
}

type searchResponse struct {
	Results []corpus.Result `json:"results"`
}

func (s *searchResponse) decode(t *testing.T, body []byte) {
	t.Helper()
	require.NoError(t, json.Unmarshal(body, s))
}
