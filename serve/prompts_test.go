package serve

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
)

// TestPromptNames serves a folder with query, document and a default
// prompt (tools/golden/families.py's prompts-default) and checks each
// route's vectors against sentence-transformers': TEI's prompt_name picks
// a prompt as encode(prompt_name=) does, no prompt_name is encode(), and a
// name the folder does not define is TEI's 422 Validation error.
func TestPromptNames(t *testing.T) {
	dir, g := testmodel.AssembleFamily(t, "prompts-default")
	m, err := minilm.Load(context.Background(), dir, minilm.Options{Threads: 1})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	ts := startServer(t, Config{}, func(context.Context) (*minilm.Model, error) { return m, nil })
	waitFor(t, "model loaded", ts.Ready)
	inputs, err := json.Marshal(g.Texts)
	require.NoError(t, err)

	near := func(want [][]float64, got [][]float32) {
		t.Helper()
		require.Len(t, got, len(want))
		for i := range want {
			require.Len(t, got[i], len(want[i]))
			for j := range want[i] {
				require.LessOrEqual(t, math.Abs(float64(got[i][j])-want[i][j]), 1e-5, "text %d component %d", i, j)
			}
		}
	}
	for _, c := range []struct {
		name, route, extra string
		want               [][]float64
	}{
		{"embed default", "/embed", ``, g.Encode},
		{"embed query", "/embed", `, "prompt_name": "query"`, g.EncodeQuery},
		{"embed document", "/embed", `, "prompt_name": "document"`, g.EncodeDocument},
		{"invocations document", "/invocations", `, "prompt_name": "document"`, g.EncodeDocument},
		{"invocations default", "/invocations", ``, g.Encode},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := postJSON(t, ts.url+c.route, `{"inputs": `+string(inputs)+c.extra+`}`)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var got [][]float32
			if c.route == "/invocations" {
				var r struct{ Embeddings [][]float32 }
				require.NoError(t, json.Unmarshal(body, &r))
				got = r.Embeddings
			} else {
				require.NoError(t, json.Unmarshal(body, &got))
			}
			near(c.want, got)
		})
	}
	t.Run("openai gets the default prompt", func(t *testing.T) {
		resp, body := postJSON(t, ts.url+"/v1/embeddings", `{"input": `+string(inputs)+`, "model": "x"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var r openAIResponse
		require.NoError(t, json.Unmarshal(body, &r))
		near(g.Encode, r.vectors(t))
	})
	t.Run("unknown prompt name on TEI", func(t *testing.T) {
		resp, body := postJSON(t, ts.url+"/embed", `{"inputs": "hello", "prompt_name": "search_query"}`)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		var e struct {
			Error     string `json:"error"`
			ErrorType string `json:"error_type"`
		}
		require.NoError(t, json.Unmarshal(body, &e), string(body))
		assert.Equal(t, "Validation", e.ErrorType)
		assert.Contains(t, e.Error, `"search_query"`)
		assert.Contains(t, e.Error, `"classification"`, "the error lists the folder's prompts")
	})
	t.Run("unknown prompt name on invocations", func(t *testing.T) {
		resp, body := postJSON(t, ts.url+"/invocations", `{"inputs": "hello", "prompt_name": "nope"}`)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		assert.True(t, strings.Contains(string(body), `"invalid_request_error"`), string(body))
	})
	t.Run("info names the pooling", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, ts.url+"/info", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), `"pooling":"mean"`)
	})
}
