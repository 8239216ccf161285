package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
)

// TestErrorKindPerRouteFamily pins what each kind becomes on each route
// family: the status (the same on both), OpenAI's "type" and TEI's
// "error_type", and Retry-After for a model still loading.
func TestErrorKindPerRouteFamily(t *testing.T) {
	cases := []struct {
		kind        ErrorKind
		status      int
		openAI, tei string
		retryAfter  string
	}{
		{KindInvalid, 400, typeInvalidRequest, "Validation", ""},
		{KindValidation, 422, typeInvalidRequest, "Validation", ""},
		{KindTooLarge, 413, typeTooLarge, "Validation", ""},
		{KindMediaType, 415, typeMediaType, "Validation", ""},
		{KindMethod, 405, typeMethod, "Validation", ""},
		{KindNotFound, 404, typeNotFound, "Validation", ""},
		{KindOverloaded, 429, typeRateLimit, "Overloaded", ""},
		{KindNotReady, 503, typeNotReady, "Unhealthy", "5"},
		{KindLoadFailed, 503, typeLoadFailed, "Unhealthy", ""},
		{KindShuttingDown, 503, typeUnavailable, "Unhealthy", ""},
		{KindUnavailable, 503, typeUnavailable, "Unhealthy", ""},
		{KindCancelled, 499, typeClientCancelled, "Backend", ""},
		{KindInternal, 500, typeInternal, "Backend", ""},
	}
	for _, c := range cases {
		// Wrapped with context, as a caller would: the family still finds it.
		err := errors.Join(errors.New("context"), &Error{Kind: c.kind, Msg: "what happened"})

		rec := httptest.NewRecorder()
		writeError(rec, err)
		require.Equal(t, c.status, rec.Code, "kind %d", c.kind)
		assert.JSONEq(t, `{"error":{"message":"what happened","type":"`+c.openAI+`"}}`, rec.Body.String())
		assert.Equal(t, c.retryAfter, rec.Header().Get("Retry-After"))
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))

		rec = httptest.NewRecorder()
		writeTEIError(rec, err)
		require.Equal(t, c.status, rec.Code, "kind %d", c.kind)
		assert.JSONEq(t, `{"error":"what happened","error_type":"`+c.tei+`"}`, rec.Body.String())
		assert.Equal(t, c.retryAfter, rec.Header().Get("Retry-After"))
	}
	// An error that is not an *Error is an internal one, its message kept.
	rec := httptest.NewRecorder()
	writeTEIError(rec, errors.New("plain"))
	assert.Equal(t, 500, rec.Code)
	assert.JSONEq(t, `{"error":"plain","error_type":"Backend"}`, rec.Body.String())
}

// testCore is the serving core over the shared model and a batcher whose
// encoder the test controls.
func testCore(t *testing.T, maxQueue int, encode encodeFunc) *embedder {
	t.Helper()
	cfg := Config{MaxQueue: maxQueue, BatchWait: -1}.withDefaults()
	m := newMetrics()
	b := newBatcher(cfg, m, encode)
	done := make(chan struct{})
	go func() { defer close(done); b.run() }()
	t.Cleanup(func() { b.stop(); <-done })
	return &embedder{batcher: b, metrics: m, log: quietLogger(), maxQueue: maxQueue}
}

func requireKind(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "%v is not an *Error", err)
	require.Equal(t, kind, e.Kind, "%v", err)
	return e
}

// TestEmbedderTypedErrors reaches every kind the core fails with, and
// checks that each carries its cause for errors.Is.
func TestEmbedderTypedErrors(t *testing.T) {
	m := sharedModel(t)
	ctx := context.Background()
	lost := errors.New("device lost")
	release := make(chan struct{})
	var failing atomic.Bool
	core := testCore(t, 2, func(ctx context.Context, seqs [][]int64) ([][]float32, error) {
		<-release
		if failing.Load() {
			return nil, lost
		}
		return m.EncodeIDs(ctx, seqs)
	})
	in := func(texts ...string) embedInput {
		return embedInput{Route: "test", Texts: texts, Role: hf.RoleDefault, Truncate: true, Normalize: true}
	}

	_, err := core.Embed(ctx, in("a"))
	requireKind(t, err, KindNotReady)
	core.setLoadErr(errors.New("no weights"))
	_, err = core.Embed(ctx, in("a"))
	e := requireKind(t, err, KindLoadFailed)
	assert.Equal(t, "model failed to load: no weights", e.Error())
	core.model.Store(m)

	name := "nope"
	_, err = core.Embed(ctx, embedInput{Texts: []string{"a"}, PromptName: &name})
	requireKind(t, err, KindValidation)
	_, err = core.Embed(ctx, in("caf\xe9"))
	requireKind(t, err, KindInvalid)
	assert.ErrorIs(t, err, hf.ErrInvalidUTF8)
	long := in(strings.Repeat("word ", 400))
	long.Truncate = false
	_, err = core.Embed(ctx, long)
	e = requireKind(t, err, KindTooLarge)
	assert.Contains(t, e.Msg, "more than max_seq_length 256")

	// Two inputs fill the queue while the encoder waits.
	type result struct {
		res embeddings
		err error
	}
	first := make(chan result, 1)
	go func() {
		res, err := core.Embed(ctx, in("a", "b"))
		first <- result{res, err}
	}()
	waitFor(t, "queue filled", func() bool { return core.batcher.queued() == 2 })
	_, err = core.Embed(ctx, in("c"))
	requireKind(t, err, KindOverloaded)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	// A context that ends while the request waits for the batcher.
	blocked := testCore(t, 4, func(ctx context.Context, seqs [][]int64) ([][]float32, error) {
		<-release
		return m.EncodeIDs(ctx, seqs)
	})
	blocked.model.Store(m)
	_, err = blocked.Embed(cctx, in("d"))
	requireKind(t, err, KindCancelled)
	close(release)
	r := <-first
	require.NoError(t, r.err)
	require.Len(t, r.res.Vectors, 2)
	assert.Equal(t, 6, r.res.Tokens) // [CLS] a [SEP], [CLS] b [SEP]

	failing.Store(true)
	_, err = core.Embed(ctx, in("fail"))
	requireKind(t, err, KindInternal)
	assert.ErrorIs(t, err, lost)

	core.batcher.stop()
	_, err = core.Embed(ctx, in("a"))
	requireKind(t, err, KindShuttingDown)
}

// familyError reads a response in the shape its route family answers:
// TEI's error_type on TEI's routes, OpenAI's type on the others.
func familyError(t *testing.T, path string, body []byte) string {
	t.Helper()
	if path == "/embed" || path == "/health" || path == "/info" {
		return teiErrorTypeOf(t, body)
	}
	return errorType(t, body)
}

// TestCoreErrorsPerRouteFamily sends the core's errors through every
// embedding route over real HTTP: each route family answers the same
// status in its own body.
func TestCoreErrorsPerRouteFamily(t *testing.T) {
	index, err := corpus.FromVectors(corpus.Info{}, []corpus.Chunk{{ID: "a#0", Doc: "a", Text: "apt", End: 3}},
		encodeDirect(t, []string{"apt"}).Vectors)
	require.NoError(t, err)
	routes := []struct{ path, contentType, body string }{
		{"/embed", "application/json", `{"inputs": "a"}`},
		{"/v1/embeddings", "application/json", `{"input": "a"}`},
		{"/invocations", "application/json", `{"inputs": "a"}`},
		{"/invocations", JSONLinesType, "\"a\"\n"},
		{"/search", "application/json", `{"query": "a"}`},
	}
	check := func(t *testing.T, ts *testServer, status int, openAI, tei, retryAfter string) {
		t.Helper()
		for _, r := range routes {
			resp, body := do(t, http.MethodPost, ts.url+r.path, r.contentType, strings.NewReader(r.body))
			require.Equal(t, status, resp.StatusCode, "%s %s: %s", r.path, r.contentType, body)
			want := openAI
			if r.path == "/embed" {
				want = tei
			}
			assert.Equal(t, want, familyError(t, r.path, body), "%s %s", r.path, r.contentType)
			assert.Equal(t, retryAfter, resp.Header.Get("Retry-After"), "%s %s", r.path, r.contentType)
		}
	}

	t.Run("not ready", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		ts := startServer(t, Config{Index: index}, func(ctx context.Context) (*minilm.Model, error) {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil, errors.New("stopped")
		})
		check(t, ts, 503, typeNotReady, "Unhealthy", "5")
	})
	t.Run("load failed", func(t *testing.T) {
		ts := startServer(t, Config{Index: index}, func(context.Context) (*minilm.Model, error) { return nil, errors.New("no weights") })
		waitFor(t, "load failure", func() bool { return ts.LoadErr() != nil })
		check(t, ts, 503, typeLoadFailed, "Unhealthy", "")
	})
	t.Run("backend", func(t *testing.T) {
		m := sharedModel(t)
		ts := startServerWith(t, Config{Index: index}, func(context.Context) (*minilm.Model, error) { return m, nil }, func(s *Server) {
			s.batcher.encode = func(context.Context, [][]int64) ([][]float32, error) { return nil, errors.New("device lost") }
		})
		waitFor(t, "model loaded", ts.Ready)
		check(t, ts, 500, typeInternal, "Backend", "")
		resp, body := postJSON(t, ts.url+"/embed", `{"inputs": "a"}`)
		require.Equal(t, 500, resp.StatusCode)
		assert.Contains(t, string(body), "inference failed: device lost")
	})
	t.Run("overloaded", func(t *testing.T) {
		ts, gate := startGated(t, Config{Index: index, MaxQueue: 4})
		first := make(chan error, 1)
		go func() {
			_, err := embedVia(ts.url, "invocations", []string{textA, textB, "c", "d"})
			first <- err
		}()
		gate.held(t)
		require.Equal(t, 4, ts.batcher.queued())
		check(t, ts, 429, typeRateLimit, "Overloaded", "")
		gate.open()
		require.NoError(t, <-first)
	})
}

// TestErrorBodiesAreJSON decodes one error of each family strictly, so a
// stray field or a changed shape fails here.
func TestErrorBodiesAreJSON(t *testing.T) {
	ts := startReady(t, Config{})
	resp, body := postJSON(t, ts.url+"/embed", `{"inputs": []}`)
	require.Equal(t, 400, resp.StatusCode)
	var tei map[string]string
	require.NoError(t, json.Unmarshal(body, &tei))
	assert.Equal(t, map[string]string{"error": "`inputs` is an empty list; send at least one text", "error_type": "Validation"}, tei)
	resp, body = postJSON(t, ts.url+"/v1/embeddings", `{"input": []}`)
	require.Equal(t, 400, resp.StatusCode)
	var oa map[string]map[string]string
	require.NoError(t, json.Unmarshal(body, &oa))
	assert.Equal(t, map[string]map[string]string{"error": {"message": "`input` is an empty list; send at least one text", "type": typeInvalidRequest}}, oa)
}
