package serve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func postWith(t testing.TB, url, contentType, accept, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp, buf.Bytes()
}

func parseCSVVectors(t testing.TB, body []byte) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var v []float32
		for _, f := range strings.Split(line, ",") {
			x, err := strconv.ParseFloat(f, 32)
			require.NoError(t, err)
			v = append(v, float32(x))
		}
		out = append(out, v)
	}
	return out
}

// parseNPY reads the NumPy format 1.0 float32 (n, dim) array appendNPY writes.
func parseNPY(t testing.TB, b []byte) [][]float32 {
	t.Helper()
	require.True(t, bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")))
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	require.Zero(t, (10+hl)%64, "data must start 64-byte aligned")
	header := string(b[10 : 10+hl])
	require.Contains(t, header, "'descr': '<f4'")
	require.Contains(t, header, "'fortran_order': False")
	shape := header[strings.Index(header, "(")+1 : strings.Index(header, ")")]
	parts := strings.Split(shape, ",")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	require.NoError(t, err)
	dim, err := strconv.Atoi(strings.TrimSpace(parts[1]))
	require.NoError(t, err)
	data := b[10+hl:]
	require.Len(t, data, n*dim*4)
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(data[(i*dim+j)*4:]))
		}
	}
	return out
}

func TestInvocationsAccept(t *testing.T) {
	ts := startReady(t, Config{})
	texts := []string{textA, textB}
	want := encodeDirect(t, texts).Vectors
	body := mustJSON(t, map[string]any{"inputs": texts})
	url := ts.url + "/invocations"

	for _, accept := range []string{"", "application/json", "*/*", "text/html, application/json;q=0.5"} {
		resp, out := postWith(t, url, "application/json", accept, body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%q: %s", accept, out)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var got struct {
			Embeddings [][]float32 `json:"embeddings"`
		}
		require.NoError(t, json.Unmarshal(out, &got))
		requireSameVectors(t, want, got.Embeddings)
	}

	resp, out := postWith(t, url, "application/json", "text/csv", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Equal(t, CSVType, resp.Header.Get("Content-Type"))
	requireSameVectors(t, want, parseCSVVectors(t, out))

	resp, out = postWith(t, url, "application/json", "application/jsonlines", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	var lines [][]float32
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		var v []float32
		require.NoError(t, json.Unmarshal([]byte(l), &v))
		lines = append(lines, v)
	}
	requireSameVectors(t, want, lines)

	// A higher q wins over the order of the header.
	resp, out = postWith(t, url, "application/json", "application/json;q=0.1, application/x-npy", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	require.Equal(t, NPYType, resp.Header.Get("Content-Type"))
	requireSameVectors(t, want, parseNPY(t, out))

	for _, accept := range []string{"text/html", "application/xml;q=1, application/json;q=0"} {
		resp, out = postWith(t, url, "application/json", accept, body)
		require.Equal(t, http.StatusNotAcceptable, resp.StatusCode, string(out))
		require.Equal(t, typeNotAcceptable, errorType(t, out))
	}
	// JSON Lines in is answered line for line in JSON Lines only.
	resp, out = postWith(t, url, JSONLinesType, "text/csv", "\""+textA+"\"\n")
	require.Equal(t, http.StatusNotAcceptable, resp.StatusCode, string(out))
}

// The SageMaker SDK's CSVSerializer sends a list of strings as text/csv, one
// per line.
func TestInvocationsCSVInput(t *testing.T) {
	ts := startReady(t, Config{})
	texts := []string{"hello, world", textA, `she said "hi"`}
	body := "\"hello, world\"\n" + textA + "\n\"she said \"\"hi\"\"\"\n"
	resp, out := postWith(t, ts.url+"/invocations", "text/csv", "application/json", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	var got struct {
		Embeddings [][]float32 `json:"embeddings"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	requireSameVectors(t, encodeDirect(t, texts).Vectors, got.Embeddings)

	for _, bad := range []string{"a,b\n", "", "\"unterminated\n"} {
		resp, out = postWith(t, ts.url+"/invocations", "text/csv", "", bad)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q: %s", bad, out)
	}
	resp, out = postWith(t, ts.url+"/invocations", "text/csv", "", "ok\nbad \xff\n")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
}

func TestNPYHeaderAlignment(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 99, 100, 12345} {
		vecs := make([][]float32, n)
		for i := range vecs {
			vecs[i] = []float32{1, 2, 3}
		}
		got := parseNPY(t, appendNPY(nil, vecs, 3))
		require.Len(t, got, n)
	}
}
