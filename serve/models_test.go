package serve

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// huggingface_hub's InferenceClient(model=URL).feature_extraction posts
// TEI's /embed body to the root path.
func TestEmbedOnRootPath(t *testing.T) {
	ts := startReady(t, Config{})
	resp, body := postJSON(t, ts.url+"/", `{"inputs": ["`+textA+`", "`+textB+`"]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got [][]float32
	require.NoError(t, json.Unmarshal(body, &got))
	requireSameVectors(t, encodeDirect(t, []string{textA, textB}).Vectors, got)

	// Errors there are TEI's shape, as on /embed.
	resp, body = postJSON(t, ts.url+"/", `{"inputs": []}`)
	require.True(t, resp.StatusCode >= 400 && resp.StatusCode < 500, "%d %s", resp.StatusCode, body)
	require.NotEmpty(t, teiErrorTypeOf(t, body))

	// Other paths are still unknown.
	resp, _ = postJSON(t, ts.url+"/nosuch", `{"inputs": "x"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestOpenAIModels(t *testing.T) {
	for _, c := range []struct{ name, served, want string }{
		{"folder name", "", "all-MiniLM-L6-v2"},
		{"served model name", "my-embedder", "my-embedder"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := startReady(t, Config{ModelName: c.served})
			resp, body := do(t, http.MethodGet, ts.url+"/v1/models", "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var list struct {
				Object string        `json:"object"`
				Data   []openAIModel `json:"data"`
			}
			require.NoError(t, json.Unmarshal(body, &list))
			require.Equal(t, "list", list.Object)
			require.Equal(t, []openAIModel{{ID: c.want, Object: "model", OwnedBy: "embtune"}}, list.Data)

			resp, body = do(t, http.MethodGet, ts.url+"/v1/models/"+c.want, "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var one openAIModel
			require.NoError(t, json.Unmarshal(body, &one))
			require.Equal(t, c.want, one.ID)

			resp, body = do(t, http.MethodGet, ts.url+"/v1/models/text-embedding-3-small", "", nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
			require.Contains(t, string(body), c.want)
		})
	}
}

// LangChain's OpenAIEmbeddings sends tiktoken ids unless told otherwise;
// the refusal must say how to send text instead.
func TestTokenIDInputNamesTheLangChainFix(t *testing.T) {
	ts := startReady(t, Config{})
	for _, body := range []string{
		`{"input": [[9906, 1917]], "model": "m"}`,
		`{"input": [9906, 1917], "model": "m"}`,
		`{"input": 9906, "model": "m"}`,
	} {
		resp, out := postJSON(t, ts.url+"/v1/embeddings", body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
		require.Contains(t, string(out), "token ids")
		require.Contains(t, string(out), "check_embedding_ctx_length=False")
	}
	// Other wrong types keep the plain message.
	resp, out := postJSON(t, ts.url+"/v1/embeddings", `{"input": [{"text": "x"}], "model": "m"}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
	require.NotContains(t, string(out), "check_embedding_ctx_length")
}

// boto3's invoke_endpoint with endpoint_url posts to the runtime's path.
func TestRuntimeInvocationsPath(t *testing.T) {
	ts := startReady(t, Config{})
	resp, body := postJSON(t, ts.url+"/endpoints/my-endpoint/invocations", `{"inputs": ["`+textA+`"]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got struct {
		Embeddings [][]float32 `json:"embeddings"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	requireSameVectors(t, encodeDirect(t, []string{textA}).Vectors, got.Embeddings)
}
