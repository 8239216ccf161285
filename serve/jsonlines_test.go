package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/embtune/embtune/vecmath"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJSONLinesRoundTrip sends 10,000 lines, as Batch Transform does with
// SplitType=Line and BatchStrategy=MultiRecord, and checks that output line
// i is the embedding of input line i. The lines repeat 40 distinct texts in
// a shuffled order, so each answer can be checked against a direct
// encoding of its text. The texts are one word piece each, so the 10,000
// forward rows cost seconds, not minutes, on two cores.
func TestJSONLinesRoundTrip(t *testing.T) {
	texts := make([]string, 40)
	for i := range texts {
		texts[i] = fmt.Sprint(i)
	}
	texts[3] = "café \"q\" \\ \t"
	want := encodeDirect(t, texts).Vectors
	ts := startReady(t, Config{})

	rng := rand.New(rand.NewPCG(1, 2))
	const n = 10000
	which := make([]int, n)
	var body bytes.Buffer
	for i := range which {
		which[i] = rng.IntN(len(texts))
		b, _ := json.Marshal(texts[which[i]])
		if i%2 == 1 { // both forms Batch Transform may carry
			b, _ = json.Marshal(map[string]any{"text": texts[which[i]], "id": i})
		}
		body.Write(b)
		body.WriteString("\n")
	}
	resp, out := do(t, http.MethodPost, ts.url+"/invocations", "application/jsonlines", &body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, JSONLinesType, resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		var v []float32
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "line %d", i+1)
		require.Less(t, i, n)
		require.GreaterOrEqual(t, vecmath.Cosine(want[which[i]], v), 0.99999, "line %d", i+1)
		i++
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, n, i)
}

func TestJSONLinesErrors(t *testing.T) {
	ts := startReady(t, Config{MaxPayloadBytes: 1 << 20})
	cases := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"empty", "\n", 400, "empty"},
		{"blank line inside", "\"a\"\n\n\"b\"\n", 400, "line 2 is empty"},
		{"number", "\"a\"\n42\n", 400, "line 2 must be a JSON string"},
		{"text not a string", "{\"text\": 3}\n", 400, `line 1: "text" must be a string`},
		{"no text", "{\"body\": \"x\"}\n", 400, `line 1 has no "text"`},
		{"bad JSON", "\"a\"\n\"b\n", 400, "line 2"},
		{"invalid UTF-8", "\"\xff\"\n", 400, "UTF-8"},
		{"oversize", strings.Repeat("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", 40000), 413, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+"/invocations", "application/jsonlines", strings.NewReader(c.body))
			require.Equal(t, c.status, resp.StatusCode, string(body))
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e))
			assert.Contains(t, e.Error.Message, c.msg)
		})
	}
	// CRLF line ends and no final newline are accepted.
	resp, body := do(t, http.MethodPost, ts.url+"/invocations", "application/jsonlines; charset=utf-8", strings.NewReader("\"a\"\r\n{\"text\": \"b\"}"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, 2, bytes.Count(body, []byte("\n")))
}

func TestExecutionParameters(t *testing.T) {
	ts := startReady(t, Config{})
	resp, body := do(t, http.MethodGet, ts.url+"/execution-parameters", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.JSONEq(t, `{"MaxConcurrentTransforms": 4, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}`, string(body))
}
