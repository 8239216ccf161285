package serve

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
)

func TestSearch(t *testing.T) {
	docs := []string{
		"Use apt-get install to install a package.",
		"The boot loader is GRUB.",
		"Exim is the default mail transfer agent.",
	}
	chunks := make([]corpus.Chunk, len(docs))
	for i, d := range docs {
		chunks[i] = corpus.Chunk{ID: string(rune('a'+i)) + "#0", Doc: string(rune('a' + i)), Text: d, End: len(d)}
	}
	index, err := corpus.FromVectors(corpus.Info{}, chunks, encodeDirect(t, docs).Vectors)
	require.NoError(t, err)
	ts := startReady(t, Config{Index: index})

	resp, body := postJSON(t, ts.url+"/search", `{"query": ["which MTA is the default?", "install software"], "top_k": 2}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got struct {
		Results []struct {
			Query string `json:"query"`
			Hits  []struct {
				Rank  int     `json:"rank"`
				Score float32 `json:"score"`
				ID    string  `json:"id"`
				Text  string  `json:"text"`
			} `json:"hits"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Results, 2)
	assert.Equal(t, "which MTA is the default?", got.Results[0].Query)
	require.Len(t, got.Results[0].Hits, 2)
	assert.Equal(t, "c#0", got.Results[0].Hits[0].ID)
	assert.Equal(t, docs[2], got.Results[0].Hits[0].Text)
	assert.Equal(t, 1, got.Results[0].Hits[0].Rank)
	assert.Equal(t, "a#0", got.Results[1].Hits[0].ID)
	// Scores are the index's own: the same search done directly.
	want, err := index.Search(encodeDirect(t, []string{"install software"}).Vectors[0], 2)
	require.NoError(t, err)
	assert.InDelta(t, want[0].Score, got.Results[1].Hits[0].Score, 1e-6)

	// One query as a string; top_k defaults to 5 and is capped by the index.
	resp, body = postJSON(t, ts.url+"/search", `{"query": "boot"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Results, 1)
	assert.Len(t, got.Results[0].Hits, 3)

	for _, c := range []struct{ body, want string }{
		{`{"query": "x", "top_k": 0}`, "top_k must be between 1 and"},
		{`{"query": "x", "top_k": 1001}`, "top_k must be between 1 and"},
		{`{"query": []}`, "empty list"},
		{`{"top_k": 3}`, "missing"},
		{`["x"]`, "JSON object"},
		{`{"query": "x"`, ""},
		{`{"query": "bad \udc00 surrogate is replaced", "top_k": "3"}`, ""},
	} {
		resp, body := postJSON(t, ts.url+"/search", c.body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", c.body, body)
		assert.Contains(t, string(body), c.want)
	}

	// Responses are bounded: queries × top_k (capped by the index's size).
	many := make([]string, MaxSearchHits/3+1)
	for i := range many {
		many[i] = "q"
	}
	big := startReady(t, Config{Index: index, MaxInputs: 2 * len(many)})
	resp, body = postJSON(t, big.url+"/search", mustJSON(t, map[string]any{"query": many, "top_k": 1000}))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "hits, more than 10000")

	// A server without an index says how to get one.
	plain := startReady(t, Config{})
	resp, body = postJSON(t, plain.url+"/search", `{"query": "x"}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, string(body), "--index")
}
