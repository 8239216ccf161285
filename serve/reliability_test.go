package serve

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/minilm"
)

// overflowingModel is the shipped model with word embeddings of 3e38:
// finite weights whose forward pass overflows to NaN.
func overflowingModel(t *testing.T) *minilm.Model {
	t.Helper()
	src, err := filepath.Abs(modelDir(t))
	require.NoError(t, err)
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() != "model.safetensors" {
			require.NoError(t, os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())))
		}
	}
	w, meta, err := minilm.ReadSafetensors(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	d := w["embeddings.word_embeddings.weight"].Data
	for i := 0; i < len(d); i += 4 {
		binary.LittleEndian.PutUint32(d[i:], math.Float32bits(3e38))
	}
	require.NoError(t, minilm.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, meta))
	m, err := minilm.Load(context.Background(), dir, minilm.Options{Threads: 1})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

// The probe's NaN model: /invocations was a 500 but /v1/embeddings with
// base64 answered 200 with NaN vectors. No route returns a non-finite vector.
func TestNoRouteReturnsNonFiniteVectors(t *testing.T) {
	m := overflowingModel(t)
	ts := startServer(t, Config{}, func(context.Context) (*minilm.Model, error) { return m, nil })
	waitFor(t, "model loaded", ts.Ready)
	for _, c := range []struct{ path, body string }{
		{"/invocations", `{"inputs": ["hello"]}`},
		{"/embed", `{"inputs": "hello"}`},
		{"/embed", `{"inputs": "hello", "normalize": false}`},
		{"/v1/embeddings", `{"input": "hello"}`},
		{"/v1/embeddings", `{"input": ["hello", "world"], "encoding_format": "base64"}`},
	} {
		resp, body := postJSON(t, ts.url+c.path, c.body)
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "%s %s: %.200s", c.path, c.body, body)
		assert.Contains(t, string(body), "non-finite", "%s %s", c.path, c.body)
	}
}
