package serve

import (
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
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
	w, meta, err := hf.ReadSafetensors(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	d := w["embeddings.word_embeddings.weight"].Data
	for i := 0; i < len(d); i += 4 {
		binary.LittleEndian.PutUint32(d[i:], math.Float32bits(3e38))
	}
	require.NoError(t, hf.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, meta))
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

// After a burst of large batches tcmalloc kept the freed activation pages
// (the probe's RSS stayed at its 1.2 GB peak); an idle server hands them back.
func TestIdleServerReturnsFreeMemory(t *testing.T) {
	if _, ok := torch.ReadMallocStats(); !ok {
		// CI builds with tcmalloc (make deps fetches it, and fails there
		// when it cannot): a build without it must not lose this test
		// unseen.
		if os.Getenv("CI") == "true" && os.Getenv("EMBTUNE_TCMALLOC") != "0" {
			t.Fatal("built without the tcmalloc tag under CI=true: tools/fetch-tcmalloc.sh and tools/libtorch-env.sh link tcmalloc (EMBTUNE_TCMALLOC=0 to build without it)")
		}
		t.Skip("needs the tcmalloc build tag")
	}
	defer func(d time.Duration) { idleRelease = d }(idleRelease)
	idleRelease = 100 * time.Millisecond
	ts := startReady(t, Config{})
	long := strings.Repeat("The security team publishes advisories for stable. ", 40)
	in := make([]string, 64)
	for i := range in {
		in[i] = long
	}
	resp, body := postJSON(t, ts.url+"/invocations", mustJSON(t, map[string]any{"inputs": in}))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%.200s", body)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := torch.ReadMallocStats()
		if st.PageHeapFree < 16<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcmalloc still keeps %d MiB free after the server went idle", st.PageHeapFree>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
