package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

// TestTruncateDim serves with Config.TruncateDim: every embedding route
// returns the first dims re-normalised, OpenAI's dimensions cuts further
// (and nothing above the served dim), and /embed with normalize false
// returns the bare cut, as sentence-transformers' truncate_dim does.
func TestTruncateDim(t *testing.T) {
	ts := startReady(t, Config{TruncateDim: 128})
	full := encodeDirect(t, []string{textA}).Vectors[0]
	want := vecmath.Truncate(full, 128)

	resp, body := postJSON(t, ts.url+"/invocations", `{"inputs":["`+textA+`"]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var inv struct{ Embeddings [][]float32 }
	require.NoError(t, json.Unmarshal(body, &inv))
	requireSameVectors(t, [][]float32{want}, inv.Embeddings)

	resp, body = postJSON(t, ts.url+"/embed", `{"inputs":"`+textA+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var tei [][]float32
	require.NoError(t, json.Unmarshal(body, &tei))
	requireSameVectors(t, [][]float32{want}, tei)
	resp, body = postJSON(t, ts.url+"/embed", `{"inputs":"`+textA+`","normalize":false}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &tei))
	require.Len(t, tei, 1)
	require.Len(t, tei[0], 128)
	for i, x := range full[:128] {
		require.InDelta(t, x, tei[0][i], 1e-6, "dim %d", i)
	}
	assert.Less(t, norm(tei[0]), 0.99, "the bare cut of a unit vector")

	var oa struct {
		Data []struct{ Embedding []float32 }
	}
	resp, body = postJSON(t, ts.url+"/v1/embeddings", `{"input":"`+textA+`","dimensions":64}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &oa))
	require.Len(t, oa.Data, 1)
	requireSameVectors(t, [][]float32{vecmath.Truncate(full, 64)}, [][]float32{oa.Data[0].Embedding})
	resp, body = postJSON(t, ts.url+"/v1/embeddings", `{"input":"`+textA+`","dimensions":128}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	resp, body = postJSON(t, ts.url+"/v1/embeddings", `{"input":"`+textA+`","dimensions":256}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
	assert.Equal(t, typeInvalidRequest, errorType(t, body))
	assert.Contains(t, string(body), "give 1 to 128")
}

// TestOpenAIDimensions cuts the full model's vectors to the requested
// dimensions, re-normalised, as OpenAI's text-embedding-3 models do.
func TestOpenAIDimensions(t *testing.T) {
	ts := startReady(t, Config{})
	full := encodeDirect(t, []string{textA}).Vectors[0]
	for _, d := range []int{384, 256, 1} {
		resp, body := postJSON(t, ts.url+"/v1/embeddings", `{"input":"`+textA+`","dimensions":`+strconv.Itoa(d)+`}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		var oa struct {
			Data []struct{ Embedding []float32 }
		}
		require.NoError(t, json.Unmarshal(body, &oa))
		requireSameVectors(t, [][]float32{vecmath.Truncate(full, d)}, [][]float32{oa.Data[0].Embedding})
	}
}

// TestTruncateDimAboveModelFailsLoad: a truncate dim the model cannot give
// is a load failure that /ping reports.
func TestTruncateDimAboveModelFailsLoad(t *testing.T) {
	m := sharedModel(t)
	ts := startServer(t, Config{TruncateDim: 512}, func(context.Context) (*minilm.Model, error) { return m, nil })
	waitFor(t, "load failure", func() bool { return ts.LoadErr() != nil })
	assert.Contains(t, ts.LoadErr().Error(), "truncate dim 512 is larger than the model's embedding dimension 384")
	resp, body := postJSON(t, ts.url+"/invocations", `{"inputs":"a"}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
}
