package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

const (
	textA = "How do I upgrade Debian to the next stable release?"
	textB = "Run apt full-upgrade after changing sources.list."
)

func TestInvocationsRequestShapes(t *testing.T) {
	ts := startReady(t, Config{})
	cases := []struct {
		name, contentType, body string
		texts                   []string
	}{
		{"object with string", "application/json", `{"inputs": "` + textA + `"}`, []string{textA}},
		{"object with list", "application/json", mustJSON(t, map[string]any{"inputs": []string{textA, textB}}), []string{textA, textB}},
		{"object with parameters", "application/json", `{"inputs": ["` + textB + `"], "parameters": {"x": 1}}`, []string{textB}},
		{"bare string", "application/json", `"` + textA + `"`, []string{textA}},
		{"bare list", "application/json", mustJSON(t, []string{textB, textA}), []string{textB, textA}},
		{"empty string gets a vector", "application/json", `{"inputs": ["", "` + textA + `"]}`, []string{"", textA}},
		{"empty string alone", "application/json", `{"inputs": ""}`, []string{""}},
		{"charset parameter", "application/json; charset=utf-8", `{"inputs": "` + textA + `"}`, []string{textA}},
		{"no content type", "", `["` + textA + `"]`, []string{textA}},
		{"unicode and escapes", "application/json", `{"inputs": ["caf\u00e9 \ud83d\ude00 \"quoted\"", "日本語のテキスト"]}`, []string{"café 😀 \"quoted\"", "日本語のテキスト"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+"/invocations", c.contentType, strings.NewReader(c.body))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "0", resp.Header.Get(TruncatedHeader))
			var got struct {
				Embeddings [][]float32 `json:"embeddings"`
			}
			require.NoError(t, json.Unmarshal(body, &got))
			requireSameVectors(t, encodeDirect(t, c.texts).Vectors, got.Embeddings)
		})
	}
}

func TestEmbedTEI(t *testing.T) {
	ts := startReady(t, Config{})
	cases := []struct {
		name, body string
		texts      []string
	}{
		{"string", `{"inputs": "` + textA + `"}`, []string{textA}},
		{"list with options", `{"inputs": ["` + textA + `", "` + textB + `"], "normalize": true, "truncate": true}`, []string{textA, textB}},
		// The folder ends in a Normalize module, so the model's own output is
		// unit-length whatever normalize says (as in sentence-transformers).
		{"normalize false", `{"inputs": ["` + textB + `"], "normalize": false}`, []string{textB}},
		{"truncation direction right", `{"inputs": "` + textA + `", "truncation_direction": "Right"}`, []string{textA}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := postJSON(t, ts.url+"/embed", c.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var got [][]float32
			require.NoError(t, json.Unmarshal(body, &got))
			requireSameVectors(t, encodeDirect(t, c.texts).Vectors, got)
		})
	}
}

type openAIResponse struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// vectors decodes the data in index order, as floats or base64.
func (r openAIResponse) vectors(t testing.TB) [][]float32 {
	t.Helper()
	out := make([][]float32, len(r.Data))
	for i, d := range r.Data {
		require.Equal(t, "embedding", d.Object)
		require.Equal(t, i, d.Index)
		var s string
		if json.Unmarshal(d.Embedding, &s) == nil {
			raw, err := base64.StdEncoding.DecodeString(s)
			require.NoError(t, err)
			require.Zero(t, len(raw)%4)
			v := make([]float32, len(raw)/4)
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
			out[i] = v
			continue
		}
		require.NoError(t, json.Unmarshal(d.Embedding, &out[i]))
	}
	return out
}

func TestOpenAIEmbeddings(t *testing.T) {
	named := startReady(t, Config{ModelName: "all-MiniLM-L6-v2"})
	echo := startReady(t, Config{})
	cases := []struct {
		name      string
		ts        *testServer
		body      string
		texts     []string
		wantModel string
	}{
		{"string float", named, `{"input": "` + textA + `", "model": "x"}`, []string{textA}, "all-MiniLM-L6-v2"},
		{"list float", named, `{"input": ["` + textA + `", "` + textB + `"], "encoding_format": "float"}`, []string{textA, textB}, "all-MiniLM-L6-v2"},
		{"list base64", named, `{"input": ["` + textB + `", "", "` + textA + `"], "encoding_format": "base64"}`, []string{textB, "", textA}, "all-MiniLM-L6-v2"},
		{"echoes the request's model", echo, `{"input": "` + textA + `", "model": "my-model", "dimensions": 384}`, []string{textA}, "my-model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := postJSON(t, c.ts.url+"/v1/embeddings", c.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var got openAIResponse
			require.NoError(t, json.Unmarshal(body, &got))
			assert.Equal(t, "list", got.Object)
			assert.Equal(t, c.wantModel, got.Model)
			want := encodeDirect(t, c.texts)
			requireSameVectors(t, want.Vectors, got.vectors(t))
			tokens := 0
			for _, n := range want.Tokens {
				tokens += n
			}
			assert.Equal(t, tokens, got.Usage.PromptTokens)
			assert.Equal(t, tokens, got.Usage.TotalTokens)
		})
	}
}

func TestBase64MatchesFloat(t *testing.T) {
	ts := startReady(t, Config{})
	_, fb := postJSON(t, ts.url+"/v1/embeddings", `{"input": ["`+textA+`"]}`)
	_, bb := postJSON(t, ts.url+"/v1/embeddings", `{"input": ["`+textA+`"], "encoding_format": "base64"}`)
	var f, b openAIResponse
	require.NoError(t, json.Unmarshal(fb, &f))
	require.NoError(t, json.Unmarshal(bb, &b))
	// The float form is the shortest decimal that reads back to the same
	// float32, so both forms carry identical bits.
	assert.Equal(t, f.vectors(t), b.vectors(t))
}

func TestPingBeforeAndAfterLoad(t *testing.T) {
	m := sharedModel(t)
	release := make(chan struct{})
	ts := startServer(t, Config{}, func(ctx context.Context) (*minilm.Model, error) {
		select {
		case <-release:
			return m, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})

	resp, body := do(t, http.MethodGet, ts.url+"/ping", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.JSONEq(t, `{"status":"loading","error":{"message":"model is loading","type":"model_not_ready"}}`, string(body))
	resp, body = postJSON(t, ts.url+"/invocations", `{"inputs":"a"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, typeNotReady, errorType(t, body))
	_, body = do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	assert.Contains(t, string(body), "\nembtune_model_loaded 0\n")

	close(release)
	waitFor(t, "model loaded", ts.Ready)
	resp, body = do(t, http.MethodGet, ts.url+"/ping", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))
	resp, _ = do(t, http.MethodHead, ts.url+"/ping", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, body = do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	assert.Contains(t, string(body), "\nembtune_model_loaded 1\n")
	resp, body = postJSON(t, ts.url+"/invocations", `{"inputs":"a"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func TestBadModelFolderKeepsServing(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/config.json", []byte("{not json"), 0o644))
	ts := startServer(t, Config{}, func(ctx context.Context) (*minilm.Model, error) {
		return minilm.Load(ctx, dir, minilm.Options{})
	})
	waitFor(t, "load failure", func() bool { return ts.LoadErr() != nil })
	reason := ts.LoadErr().Error()

	for range 3 { // keeps answering; nothing restarts or crashes
		resp, body := do(t, http.MethodGet, ts.url+"/ping", "", nil)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		var ping struct {
			Status string    `json:"status"`
			Error  errorBody `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &ping))
		assert.Equal(t, "failed", ping.Status)
		assert.Equal(t, typeLoadFailed, ping.Error.Type)
		assert.Contains(t, ping.Error.Message, reason)
	}
	resp, body := postJSON(t, ts.url+"/invocations", `{"inputs":"a"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, typeLoadFailed, errorType(t, body))
	resp, _ = do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.False(t, ts.Ready())
}

// TestBadModelFolderExits: with ExitOnLoadFailure (serve outside a
// SageMaker container), a model that fails to load stops Run with the
// reason, as TEI exits, instead of serving 503s.
func TestBadModelFolderExits(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/config.json", []byte("{not json"), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := New(Config{ExitOnLoadFailure: true, Logger: quietLogger()}, func(ctx context.Context) (*minilm.Model, error) {
		return minilm.Load(ctx, dir, minilm.Options{})
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), ln) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run still serving a minute after the load failed")
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model failed to load")
	assert.Contains(t, err.Error(), s.LoadErr().Error())
	_, dialErr := net.Dial("tcp", ln.Addr().String())
	assert.Error(t, dialErr, "nothing listens any more")
}

func TestLoaderPanicIsALoadError(t *testing.T) {
	ts := startServer(t, Config{}, func(context.Context) (*minilm.Model, error) { panic("boom") })
	waitFor(t, "load failure", func() bool { return ts.LoadErr() != nil })
	assert.Contains(t, ts.LoadErr().Error(), "boom")
	resp, _ := do(t, http.MethodGet, ts.url+"/ping", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func errorType(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error *errorBody `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.NotNil(t, e.Error, string(body))
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Type
}

// teiErrorTypeOf reads TEI's error body {"error": "...", "error_type": "..."}.
func teiErrorTypeOf(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error     *string `json:"error"`
		ErrorType string  `json:"error_type"`
	}
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.NotNil(t, e.Error, string(body))
	require.NotEmpty(t, *e.Error)
	return e.ErrorType
}

func TestTruncation(t *testing.T) {
	ts := startReady(t, Config{})
	long := strings.Repeat("the quick brown fox jumps over the lazy dog ", 80) // ~720 tokens
	texts := []string{textA, long, textB}
	want := encodeDirect(t, texts)
	require.True(t, want.Truncated[1])
	body := mustJSON(t, map[string]any{"inputs": texts})

	resp, b := postJSON(t, ts.url+"/invocations", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "1", resp.Header.Get(TruncatedHeader))
	var inv struct{ Embeddings [][]float32 }
	require.NoError(t, json.Unmarshal(b, &inv))
	requireSameVectors(t, want.Vectors, inv.Embeddings)

	resp, b = postJSON(t, ts.url+"/embed", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "1", resp.Header.Get(TruncatedHeader))

	resp, b = postJSON(t, ts.url+"/v1/embeddings", mustJSON(t, map[string]any{"input": texts}))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "1", resp.Header.Get(TruncatedHeader))
	var oa openAIResponse
	require.NoError(t, json.Unmarshal(b, &oa))
	assert.Equal(t, want.Tokens[0]+sharedModel(t).MaxSeqLength+want.Tokens[2], oa.Usage.PromptTokens)

	resp, b = postJSON(t, ts.url+"/embed", mustJSON(t, map[string]any{"inputs": texts, "truncate": false}))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	assert.Equal(t, "Validation", teiErrorTypeOf(t, b))
	assert.Contains(t, string(b), "input 1 has")
}

// TestConcurrentClients checks that batching across requests hands every
// client its own vectors, in its own order. The first forward batch is held
// until every client's first request is in: those behind it are batched
// together, whatever the machine's speed.
func TestConcurrentClients(t *testing.T) {
	ts, gate := startGated(t, Config{BatchWait: 20 * time.Millisecond})
	const clients, perClient = 8, 8
	texts := func(c, r int) []string {
		out := make([]string, 1+(c+r)%4)
		for i := range out {
			out[i] = fmt.Sprintf("client %d asks question %d, part %d: %s", c, r, i, strings.Repeat("why ", (c*7+r*3+i)%20))
		}
		return out
	}
	var all []string
	for c := range clients {
		for r := range perClient {
			all = append(all, texts(c, r)...)
		}
	}
	want := map[string][]float32{}
	vecs := encodeDirect(t, all).Vectors
	for i, text := range all {
		want[text] = vecs[i]
	}

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range perClient {
				in := texts(c, r)
				got, err := embedVia(ts.url, []string{"invocations", "embed", "openai"}[(c+r)%3], in)
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", c, r, err)
					continue
				}
				for i := range in {
					if len(got) != len(in) || vecmath.Cosine(got[i], want[in[i]]) < 0.99999 {
						errs <- fmt.Errorf("client %d request %d input %d: not its own vector", c, r, i)
						break
					}
				}
			}
		}()
	}
	// Every client's first request: 1+c%4 inputs for client c.
	firstInputs := 0
	for c := range clients {
		firstInputs += len(texts(c, 0))
	}
	gate.held(t)
	waitFor(t, "every client's first request queued", func() bool { return ts.batcher.queued() == firstInputs })
	gate.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	_, body := do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	batches := metricValue(t, body, "embtune_batch_size_count")
	inputs := metricValue(t, body, "embtune_batch_size_sum")
	assert.Equal(t, float64(len(all)), inputs)
	assert.Less(t, batches, float64(clients*perClient), "requests were not batched together")
	t.Logf("%d requests, %d inputs, %v forward batches in %v", clients*perClient, len(all), batches, time.Since(start).Round(time.Millisecond))
}

// embedVia posts texts to one route and returns its vectors.
func embedVia(base, route string, texts []string) ([][]float32, error) {
	var path, body string
	switch route {
	case "invocations":
		path = "/invocations"
		b, _ := json.Marshal(map[string]any{"inputs": texts})
		body = string(b)
	case "embed":
		path = "/embed"
		b, _ := json.Marshal(map[string]any{"inputs": texts})
		body = string(b)
	default:
		path = "/v1/embeddings"
		b, _ := json.Marshal(map[string]any{"input": texts, "encoding_format": "base64"})
		body = string(b)
	}
	resp, err := testClient.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, buf.String())
	}
	switch route {
	case "invocations":
		var r struct{ Embeddings [][]float32 }
		err = json.Unmarshal(buf.Bytes(), &r)
		return r.Embeddings, err
	case "embed":
		var r [][]float32
		err = json.Unmarshal(buf.Bytes(), &r)
		return r, err
	default:
		var r openAIResponse
		if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
			return nil, err
		}
		out := make([][]float32, len(r.Data))
		for i, d := range r.Data {
			var s string
			if err := json.Unmarshal(d.Embedding, &s); err != nil {
				return nil, err
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, err
			}
			out[i] = make([]float32, len(raw)/4)
			for j := range out[i] {
				out[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		}
		return out, nil
	}
}

func metricValue(t testing.TB, body []byte, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	require.NotNil(t, m, "series %s missing from:\n%s", series, body)
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// TestGracefulShutdownFinishesInFlight: shutdown starts while one request's
// batch runs and another waits behind it; both get their vectors, then the
// model is released.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	ts, gate := startGated(t, Config{})
	released := make(chan struct{})
	ts.release = func(*minilm.Model) { close(released) }

	type result struct {
		vecs [][]float32
		err  error
	}
	running, queued := make(chan result, 1), make(chan result, 1)
	go func() {
		v, err := embedVia(ts.url, "invocations", []string{textB})
		running <- result{v, err}
	}()
	gate.held(t)
	go func() {
		v, err := embedVia(ts.url, "invocations", []string{textA, textB})
		queued <- result{v, err}
	}()
	waitFor(t, "request queued behind the batch", func() bool { return ts.batcher.queued() == 3 })
	ts.cancel()
	waitFor(t, "shutdown begun (listener closed)", func() bool { return listenerClosed(ts.url) })
	gate.open()

	r := <-running
	require.NoError(t, r.err)
	requireSameVectors(t, encodeDirect(t, []string{textB}).Vectors, r.vecs)
	r = <-queued
	require.NoError(t, r.err)
	requireSameVectors(t, encodeDirect(t, []string{textA, textB}).Vectors, r.vecs)
	require.NoError(t, ts.wait(t))
	select {
	case <-released:
	default:
		t.Fatal("model not closed after shutdown")
	}
	_, err := testClient.Get(ts.url + "/ping")
	assert.Error(t, err, "server still accepting after shutdown")
}

// TestCancelledRequestDoesNotBreakBatcher leaves a request in the queue
// (behind a held batch), cancels it, and checks that the batcher drops it
// and goes on serving.
func TestCancelledRequestDoesNotBreakBatcher(t *testing.T) {
	ts, gate := startGated(t, Config{})
	first := make(chan error, 1)
	go func() {
		_, err := embedVia(ts.url, "invocations", []string{textB})
		first <- err
	}()
	gate.held(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/invocations", strings.NewReader(`{"inputs":["`+textA+`"]}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := testClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "request queued", func() bool { return ts.batcher.queued() == 2 })
	cancel()
	require.True(t, errors.Is(<-errc, context.Canceled))
	gate.open()
	require.NoError(t, <-first)

	got, err := embedVia(ts.url, "invocations", []string{textB})
	require.NoError(t, err)
	requireSameVectors(t, encodeDirect(t, []string{textB}).Vectors, got)
	waitFor(t, "queue drained", func() bool { return ts.batcher.queued() == 0 })
}

// TestQueueFullIs429: while 4 inputs are admitted and undelivered (their
// batch held), a fifth is refused.
func TestQueueFullIs429(t *testing.T) {
	ts, gate := startGated(t, Config{MaxQueue: 4})
	first := make(chan error, 1)
	go func() {
		_, err := embedVia(ts.url, "invocations", []string{textA, textB, "c", "d"})
		first <- err
	}()
	gate.held(t)
	require.Equal(t, 4, ts.batcher.queued())
	resp, body := postJSON(t, ts.url+"/invocations", `{"inputs":"one more"}`)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.Equal(t, typeRateLimit, errorType(t, body))
	gate.open()
	require.NoError(t, <-first)
}

func TestMetricsFormat(t *testing.T) {
	ts := startReady(t, Config{})
	postJSON(t, ts.url+"/invocations", `{"inputs":["a","b"]}`)
	postJSON(t, ts.url+"/invocations", `{"inputs":`)
	do(t, http.MethodGet, ts.url+"/invocations", "", nil)
	resp, body := do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4"))

	line := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+]?([0-9.eE+-]+|Inf)$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			continue
		}
		assert.Regexp(t, line, l)
	}
	text := string(body)
	for _, want := range []string{
		`embtune_http_requests_total{code="200",route="invocations"} 1`,
		`embtune_http_requests_total{code="400",route="invocations"} 1`,
		`embtune_http_requests_total{code="405",route="invocations"} 1`,
		`embtune_inputs_total{route="invocations"} 2`,
		`embtune_batch_size_bucket{le="+Inf"} 1`,
		`embtune_batch_size_sum 2`,
		"embtune_queue_seconds_count 2",
		"embtune_inference_seconds_count 1",
		"embtune_tokenization_seconds_count 1",
		"embtune_queue_depth 0",
		"embtune_model_loaded 1",
		`embtune_http_request_duration_seconds_count{route="invocations"} 3`,
	} {
		assert.Contains(t, text, "\n"+want+"\n")
	}
}

// TestTEIHealthAndInfo checks TEI's /health and /info over real HTTP, before
// and after the model loads, and TEI's error shape on a TEI route.
func TestTEIHealthAndInfo(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, Config{ModelName: "all-MiniLM-L6-v2", MaxInputs: 16}, func(ctx context.Context) (*minilm.Model, error) {
		select {
		case <-release:
			return sharedModel(t), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	resp, body := do(t, http.MethodGet, ts.url+"/health", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "Unhealthy", teiErrorTypeOf(t, body))
	resp, body = do(t, http.MethodGet, ts.url+"/info", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "Unhealthy", teiErrorTypeOf(t, body))

	close(release)
	waitFor(t, "model loaded", ts.Ready)
	resp, body = do(t, http.MethodGet, ts.url+"/health", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, body)

	resp, body = do(t, http.MethodGet, ts.url+"/info", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var info map[string]any
	require.NoError(t, json.Unmarshal(body, &info))
	assert.Equal(t, "all-MiniLM-L6-v2", info["model_id"])
	assert.Equal(t, "float32", info["model_dtype"])
	assert.Equal(t, map[string]any{"embedding": map[string]any{"pooling": "mean"}}, info["model_type"])
	assert.EqualValues(t, sharedModel(t).MaxSeqLength, info["max_input_length"])
	assert.EqualValues(t, 16, info["max_client_batch_size"])
	assert.EqualValues(t, DefaultMaxBatchTokens, info["max_batch_tokens"])
	assert.Equal(t, true, info["auto_truncate"])
	for _, k := range []string{"model_sha", "sha", "docker_label", "version", "max_concurrent_requests", "tokenization_workers", "max_batch_requests"} {
		assert.Contains(t, info, k)
	}

	resp, body = do(t, http.MethodPost, ts.url+"/health", "application/json", strings.NewReader(`{}`))
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "Validation", teiErrorTypeOf(t, body))
	resp, body = postJSON(t, ts.url+"/embed", `{"inputs": 7}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "Validation", teiErrorTypeOf(t, body))
	// OpenAI's route keeps OpenAI's shape.
	resp, body = postJSON(t, ts.url+"/v1/embeddings", `{"input": 7}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, typeInvalidRequest, errorType(t, body))
}

// TestMetricsStandardCollectors checks that client_golang's Go and process
// collectors are exposed next to embtune's own metrics.
func TestMetricsStandardCollectors(t *testing.T) {
	ts := startReady(t, Config{})
	resp, body := do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		assert.Contains(t, string(body), "\n"+name+" ", name)
	}
}

// TestTruncationLeft: TEI's truncation_direction "Left" keeps the end of a
// long input: the vector is the model's on the ids HF tokenizers' left
// truncation gives (their parity is hf's TestLeftTruncationGolden), and
// differs from the default right cut.
func TestTruncationLeft(t *testing.T) {
	ts := startReady(t, Config{})
	m := sharedModel(t)
	long := strings.Repeat("the quick brown fox jumps over the lazy dog ", 80) + textA
	ids, cut, err := m.Text().PrepareTruncating(long, hf.TruncateLeft)
	require.NoError(t, err)
	require.True(t, cut)
	want, err := m.EncodeIDs(context.Background(), [][]int64{ids})
	require.NoError(t, err)

	resp, b := postJSON(t, ts.url+"/embed", mustJSON(t, map[string]any{"inputs": []string{long}, "truncation_direction": "Left"}))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "1", resp.Header.Get(TruncatedHeader))
	var left [][]float32
	require.NoError(t, json.Unmarshal(b, &left))
	requireSameVectors(t, want, left)

	resp, b = postJSON(t, ts.url+"/embed", mustJSON(t, map[string]any{"inputs": []string{long}, "truncation_direction": "Right"}))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var right [][]float32
	require.NoError(t, json.Unmarshal(b, &right))
	requireSameVectors(t, encodeDirect(t, []string{long}).Vectors, right)
	assert.Less(t, vecmath.Cosine(left[0], right[0]), 0.99, "the two cuts keep different tokens")

	resp, b = postJSON(t, ts.url+"/embed", mustJSON(t, map[string]any{"inputs": []string{long}, "truncation_direction": "Left", "truncate": false}))
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
}
