package serve

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnknownAndMisCasedFields: every route refuses a key that is not
// exactly one of its fields, as TEI and OpenAI do; encoding/json alone
// would take "TEXT" for "text" and drop "normalise".
func TestUnknownAndMisCasedFields(t *testing.T) {
	for _, c := range []struct {
		route, body, want string
	}{
		{"embed", `{"Inputs": "x"}`, `did you mean "inputs"`},
		{"embed", `{"inputs": "x", "normalise": false}`, `unknown field "normalise"`},
		{"embed", `{"inputs": "x", "Normalize": false}`, `did you mean "normalize"`},
		{"invocations", `{"INPUTS": ["x"]}`, `did you mean "inputs"`},
		{"invocations", `{"inputs": ["x"], "input": "y"}`, `unknown field "input": this route takes "inputs", "prompt_name", "parameters"`},
		{"openai", `{"Input": "x", "model": "m"}`, `did you mean "input"`},
		{"openai", `{"input": "x", "model": "m", "dimension": 3}`, `unknown field "dimension"`},
		{"search", `{"query": "x", "topK": 3}`, `did you mean "top_k"`},
		{"search", `{"query": "x", "top-k": 3}`, `unknown field "top-k": did you mean "top_k"`},
		{"search", `{"query": "x", "k": 3}`, `unknown field "k": this route takes "query", "top_k"`},
		{"jsonlines", "{\"TEXT\": \"hello\"}\n", `line 1: unknown field "TEXT": did you mean "text"`},
		{"jsonlines", "\"a\"\n{\"Text\": \"hello\", \"id\": 2}\n", `line 2: unknown field "Text"`},
	} {
		var err error
		switch c.route {
		case "embed":
			_, err = decodeEmbed([]byte(c.body), 10)
		case "invocations":
			_, err = decodeInvocations([]byte(c.body), 10)
		case "openai":
			_, err = decodeOpenAI([]byte(c.body), 10, 384)
		case "search":
			_, err = decodeSearch([]byte(c.body), 10, 100)
		case "jsonlines":
			_, err = parseJSONLines([]byte(c.body))
		}
		require.Error(t, err, "%s %s", c.route, c.body)
		assert.Contains(t, err.Error(), c.want, "%s %s", c.route, c.body)
		assert.Equal(t, KindInvalid, asError(err).Kind, "%s %s", c.route, c.body)
	}
	// What the routes document still passes: OpenAI's user, and the other
	// keys of a JSON Lines chunk record.
	_, err := decodeOpenAI([]byte(`{"input": "x", "model": "m", "user": "u1", "encoding_format": "float"}`), 10, 384)
	assert.NoError(t, err)
	texts, err := parseJSONLines([]byte("{\"id\": \"d#0\", \"doc\": \"d\", \"text\": \"hello\"}\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"hello"}, texts)
	_, err = decodeEmbed([]byte(`{"inputs": "x", "normalize": true, "truncate": true, "truncation_direction": "Right", "prompt_name": null}`), 10)
	assert.NoError(t, err)
}

// TestUnknownFieldOverHTTP: the refusal reaches a client as a 400 in the
// route's error shape.
func TestUnknownFieldOverHTTP(t *testing.T) {
	ts := startReady(t, Config{})
	resp, out := do(t, http.MethodPost, ts.url+"/invocations", JSONLinesType, strings.NewReader("{\"TEXT\": \"hello\"}\n"))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
	assert.Contains(t, string(out), "case-sensitive")
	resp, out = postJSON(t, ts.url+"/embed", `{"inputs": "x", "Normalize": false}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
}
