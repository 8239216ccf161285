package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

// modelDir is the all-MiniLM-L6-v2 folder fetched by `make deps`.
func modelDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EMBTUNE_MODEL")
	if dir == "" {
		dir = filepath.Join("..", "third_party", "models", "all-MiniLM-L6-v2")
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatalf("model folder missing (run `make deps`): %v", err)
	}
	return dir
}

var (
	modelOnce sync.Once
	testModel *minilm.Model
	modelErr  error

	// stopAtExit holds servers that live for the whole test binary (the
	// fuzz target's); they stop before the shared model closes.
	stopAtExitMu sync.Mutex
	stopAtExit   []func()
)

// sharedModel loads the model once per test binary. One intra-op thread:
// on a busy 2-core box, OpenMP threads that wait at every op's barrier for
// a descheduled peer made batches 10x slower (measured in TestLoadShort).
func sharedModel(t testing.TB) *minilm.Model {
	t.Helper()
	dir := modelDir(t)
	modelOnce.Do(func() { testModel, modelErr = minilm.Load(context.Background(), dir, minilm.Options{Threads: 1}) })
	require.NoError(t, modelErr)
	return testModel
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopAtExitMu.Lock()
	for _, stop := range stopAtExit {
		stop()
	}
	stopAtExitMu.Unlock()
	if testModel != nil {
		testModel.Close()
	}
	os.Exit(code)
}

type testServer struct {
	*Server
	url    string
	cancel context.CancelFunc

	doneOnce sync.Once
	done     chan error
	runErr   error
}

// wait returns Run's result, waiting for it at most a minute.
func (ts *testServer) wait(t testing.TB) error {
	t.Helper()
	ts.doneOnce.Do(func() {
		select {
		case ts.runErr = <-ts.done:
		case <-time.After(time.Minute):
			t.Errorf("Run did not return within a minute of its context ending")
		}
	})
	return ts.runErr
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer runs a server on a random local port until the test ends.
// The model is never closed by the server: the package's tests share it.
func startServer(t testing.TB, cfg Config, load func(context.Context) (*minilm.Model, error)) *testServer {
	t.Helper()
	return startServerWith(t, cfg, load, nil)
}

// startServerWith is startServer with a hook that sees the server before
// it runs (to swap its encoder, say).
func startServerWith(t testing.TB, cfg Config, load func(context.Context) (*minilm.Model, error), hook func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s := New(cfg, load)
	s.release = func(*minilm.Model) {}
	if hook != nil {
		hook(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := ts.wait(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ts
}

// startReady runs a server with the shared model and waits until /ping is 200.
func startReady(t testing.TB, cfg Config) *testServer {
	t.Helper()
	m := sharedModel(t)
	ts := startServer(t, cfg, func(context.Context) (*minilm.Model, error) { return m, nil })
	waitFor(t, "model loaded", ts.Ready)
	return ts
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testClient = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func do(t testing.TB, method, url, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := testClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func postJSON(t testing.TB, url string, body string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", bytes.NewReader([]byte(body)))
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// encodeDirect is what the server must match: the model's own Encode.
func encodeDirect(t testing.TB, texts []string) minilm.Encoded {
	t.Helper()
	r, err := sharedModel(t).EncodeDetailed(context.Background(), texts, 0)
	require.NoError(t, err)
	return r
}

func norm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

// requireSameVectors checks got against want, one unit vector per input.
func requireSameVectors(t testing.TB, want, got [][]float32) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]), "vector %d", i)
		require.GreaterOrEqual(t, vecmath.Cosine(want[i], got[i]), 0.99999, "vector %d", i)
		require.InDelta(t, 1, norm(got[i]), 1e-4, "vector %d is not L2-normalised", i)
	}
}
