package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onlyReader hides the length of a body, so the client sends it chunked
// and the server cannot refuse it from Content-Length alone.
type onlyReader struct{ io.Reader }

func TestErrorCodes(t *testing.T) {
	const maxPayload, maxInputs = 4096, 8
	ts := startReady(t, Config{MaxPayloadBytes: maxPayload, MaxInputs: maxInputs})
	big := `{"inputs": "` + strings.Repeat("x", maxPayload) + `"}`
	nine := `["a","b","c","d","e","f","g","h","i"]`
	long := strings.Repeat("word ", 400)
	cases := []struct {
		name, method, path, contentType string
		body                            io.Reader
		status                          int
		typ                             string
	}{
		{"GET on invocations", "GET", "/invocations", "", nil, 405, typeMethod},
		{"PUT on embed", "PUT", "/embed", "application/json", strings.NewReader(`{}`), 405, typeMethod},
		{"DELETE on openai", "DELETE", "/v1/embeddings", "", nil, 405, typeMethod},
		{"POST on ping", "POST", "/ping", "application/json", strings.NewReader(`{}`), 405, typeMethod},
		{"POST on metrics", "POST", "/metrics", "", nil, 405, typeMethod},
		{"unknown path", "GET", "/nope", "", nil, 404, typeNotFound},

		{"text/plain invocations", "POST", "/invocations", "text/plain", strings.NewReader(`hello`), 415, typeMediaType},
		{"csv invocations with two fields", "POST", "/invocations", "text/csv", strings.NewReader(`a,b`), 400, typeInvalidRequest},
		{"form embed", "POST", "/embed", "application/x-www-form-urlencoded", strings.NewReader(`inputs=a`), 415, typeMediaType},
		{"bad media type openai", "POST", "/v1/embeddings", "application/", strings.NewReader(`{}`), 415, typeMediaType},

		{"body over limit", "POST", "/invocations", "application/json", strings.NewReader(big), 413, typeTooLarge},
		{"chunked body over limit", "POST", "/invocations", "application/json", onlyReader{strings.NewReader(big)}, 413, typeTooLarge},
		{"too many inputs", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs":` + nine + `}`), 413, typeTooLarge},
		{"too many inputs bare", "POST", "/invocations", "application/json", strings.NewReader(nine), 413, typeTooLarge},
		{"too many inputs embed", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":` + nine + `}`), 413, typeTooLarge},
		{"too many inputs openai", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":` + nine + `}`), 413, typeTooLarge},
		{"too long without truncate", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":"` + long + `","truncate":false}`), 413, typeTooLarge},

		{"empty body", "POST", "/invocations", "application/json", strings.NewReader(``), 400, typeInvalidRequest},
		{"whitespace body", "POST", "/invocations", "application/json", strings.NewReader(" \n "), 400, typeInvalidRequest},
		{"malformed JSON", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs":`), 400, typeInvalidRequest},
		{"malformed list", "POST", "/invocations", "application/json", strings.NewReader(`["a",]`), 400, typeInvalidRequest},
		{"trailing data", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs":"a"} x`), 400, typeInvalidRequest},
		{"trailing value bare", "POST", "/invocations", "application/json", strings.NewReader(`"a" "b"`), 400, typeInvalidRequest},
		{"number body", "POST", "/invocations", "application/json", strings.NewReader(`42`), 400, typeInvalidRequest},
		{"null body", "POST", "/invocations", "application/json", strings.NewReader(`null`), 400, typeInvalidRequest},
		{"inputs number", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": 5}`), 400, typeInvalidRequest},
		{"inputs object", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": {"a": 1}}`), 400, typeInvalidRequest},
		{"inputs list with number", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": ["a", 1]}`), 400, typeInvalidRequest},
		{"inputs list with null", "POST", "/invocations", "application/json", strings.NewReader(`["a", null]`), 400, typeInvalidRequest},
		{"inputs nested list", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": [["a", "b"]]}`), 400, typeInvalidRequest},
		{"empty list", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": []}`), 400, typeInvalidRequest},
		{"empty bare list", "POST", "/invocations", "application/json", strings.NewReader(`[]`), 400, typeInvalidRequest},
		{"missing inputs key", "POST", "/invocations", "application/json", strings.NewReader(`{"text": "a"}`), 400, typeInvalidRequest},
		{"empty object", "POST", "/invocations", "application/json", strings.NewReader(`{}`), 400, typeInvalidRequest},
		{"null inputs", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": null}`), 400, typeInvalidRequest},
		{"invalid UTF-8", "POST", "/invocations", "application/json", strings.NewReader("{\"inputs\": \"caf\xe9\"}"), 400, typeInvalidRequest},
		{"lone high surrogate", "POST", "/invocations", "application/json", strings.NewReader(`{"inputs": "a\ud800b"}`), 400, typeInvalidRequest},
		{"lone low surrogate", "POST", "/embed", "application/json", strings.NewReader(`{"inputs": "\udc00"}`), 400, typeInvalidRequest},
		{"reversed surrogates", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input": "\udc00\ud800"}`), 400, typeInvalidRequest},

		{"embed bare list", "POST", "/embed", "application/json", strings.NewReader(`["a"]`), 400, typeInvalidRequest},
		{"embed normalize string", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":"a","normalize":"yes"}`), 400, typeInvalidRequest},
		{"embed token ids", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":[[101, 102]]}`), 400, typeInvalidRequest},
		{"embed truncation direction not TEI's spelling", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":"a","truncation_direction":"left"}`), 400, typeInvalidRequest},
		{"embed truncation direction unknown", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":"a","truncation_direction":"Start"}`), 400, typeInvalidRequest},
		{"embed empty list", "POST", "/embed", "application/json", strings.NewReader(`{"inputs":[]}`), 400, typeInvalidRequest},
		{"openai token array", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":[101, 2023, 102]}`), 400, typeInvalidRequest},
		{"openai token arrays", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":[[101, 102]]}`), 400, typeInvalidRequest},
		{"openai missing input", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"model":"m"}`), 400, typeInvalidRequest},
		{"openai bad format", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":"a","encoding_format":"hex"}`), 400, typeInvalidRequest},
		{"openai model number", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":"a","model":7}`), 400, typeInvalidRequest},
		{"openai dimensions above the model's", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":"a","dimensions":385}`), 400, typeInvalidRequest},
		{"openai zero dimensions", "POST", "/v1/embeddings", "application/json", strings.NewReader(`{"input":"a","dimensions":0}`), 400, typeInvalidRequest},
		{"openai bare string", "POST", "/v1/embeddings", "application/json", strings.NewReader(`"a"`), 400, typeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, c.method, ts.url+c.path, c.contentType, c.body)
			require.Equal(t, c.status, resp.StatusCode, string(body))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if c.path == "/embed" { // TEI's route answers in TEI's shape
				assert.Equal(t, "Validation", teiErrorTypeOf(t, body))
			} else {
				assert.Equal(t, c.typ, errorType(t, body))
			}
			if c.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, resp.Header.Get("Allow"))
			}
		})
	}
	// The server is still healthy after all of that.
	resp, body := postJSON(t, ts.url+"/invocations", `{"inputs":"still here"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func TestHandlerPanicIs500(t *testing.T) {
	s := New(Config{Logger: quietLogger()}, nil)
	h := s.instrument("test", writeError, func(http.ResponseWriter, *http.Request) { panic("boom") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.Equal(t, typeInternal, errorType(t, rec.Body.Bytes()))
	assert.Contains(t, string(s.metrics.render()), `embtune_http_requests_total{code="500",route="test"} 1`)

	// A TEI route answers a panic in TEI's shape.
	h = s.instrument("tei", writeTEIError, func(http.ResponseWriter, *http.Request) { panic("boom") })
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/embed", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":"internal error","error_type":"Backend"}`, rec.Body.String())
}

func TestPlanBatches(t *testing.T) {
	cases := []struct {
		name              string
		lengths           []int
		maxRows, maxToken int
		want              []int
	}{
		{"one", []int{5}, 4, 100, []int{1}},
		{"rows bound", []int{3, 3, 3, 3, 3}, 2, 1000, []int{2, 4, 5}},
		{"token bound counts padding", []int{50, 10, 10, 10}, 100, 100, []int{2, 4}},
		{"longer than budget runs alone", []int{300, 20, 20}, 10, 256, []int{1, 3}},
		{"exact fit", []int{4, 4, 4, 4}, 10, 16, []int{4}},
		{"empty", nil, 4, 100, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, planBatches(c.lengths, c.maxRows, c.maxToken))
		})
	}
}

func TestCheckText(t *testing.T) {
	ok := []string{`"plain"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\\ud800"`, `"\\\ud83d\ude00"`, `"\u12"`, `"é 😀"`}
	for _, s := range ok {
		assert.NoError(t, checkText([]byte(s)), s)
	}
	bad := []string{`"\ud800"`, `"\udfff"`, `"\ud800\u0041"`, `"\\\ud800"`, "\"\xff\"", `"\uD83D"`}
	for _, s := range bad {
		assert.Error(t, checkText([]byte(s)), s)
	}
}

func TestIsJSON(t *testing.T) {
	for _, ct := range []string{"", "application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"} {
		assert.True(t, isJSON(ct), ct)
	}
	for _, ct := range []string{"text/plain", "text/csv", "application/x-www-form-urlencoded", "application/", "json"} {
		assert.False(t, isJSON(ct), ct)
	}
}
