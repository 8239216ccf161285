package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/vecmath"
)

// TestJSONLinesLineCap: a JSON Lines body of more lines than MaxLines is a
// 413 before any line is embedded.
func TestJSONLinesLineCap(t *testing.T) {
	ts := startReady(t, Config{MaxLines: 100})
	body := strings.Repeat("\"\"\n", 101)
	resp, out := do(t, http.MethodPost, ts.url+"/invocations", JSONLinesType, strings.NewReader(body))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(out))
	assert.Contains(t, string(out), "101 lines, more than 100")

	resp, out = do(t, http.MethodPost, ts.url+"/invocations", JSONLinesType, strings.NewReader(strings.Repeat("\"\"\n", 100)))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, 100, bytes.Count(out, []byte("\n")))
}

// TestJSONLinesStreams: a body longer than MaxInputs lines is answered a
// group at a time (chunked, no Content-Length), line i still answering
// line i, with the truncation count as a trailer; a body of one group keeps
// the header and Content-Length.
func TestJSONLinesStreams(t *testing.T) {
	ts := startReady(t, Config{MaxInputs: 4})
	texts := make([]string, 10)
	for i := range texts {
		texts[i] = fmt.Sprint("line ", i)
	}
	texts[7] = strings.Repeat("long ", 600) // truncated at max_seq_length
	want := encodeDirect(t, texts).Vectors
	var body bytes.Buffer
	for _, s := range texts {
		b, _ := json.Marshal(s)
		body.Write(b)
		body.WriteString("\n")
	}
	resp, out := do(t, http.MethodPost, ts.url+"/invocations", JSONLinesType, &body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, int64(-1), resp.ContentLength, "streamed")
	assert.Equal(t, "1", resp.Trailer.Get(TruncatedHeader))
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		var v []float32
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "line %d", i+1)
		require.Less(t, i, len(texts))
		assert.GreaterOrEqual(t, vecmath.Cosine(want[i], v), 0.99999, "line %d", i+1)
		i++
	}
	assert.Equal(t, len(texts), i)

	resp, out = do(t, http.MethodPost, ts.url+"/invocations", JSONLinesType, strings.NewReader("\"a\"\n\"b\"\n"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	assert.Equal(t, int64(len(out)), resp.ContentLength)
	assert.Equal(t, "0", resp.Header.Get(TruncatedHeader))
}
