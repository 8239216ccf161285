package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/minilm"
)

var (
	fuzzOnce   sync.Once
	fuzzServer *Server
)

// sharedFuzzServer runs one server with the real model for the whole
// binary; its handler is then called in-process, which is fast enough to fuzz.
func sharedFuzzServer(t testing.TB) *Server {
	m := sharedModel(t)
	fuzzOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// Small limits keep each run fast and reach the 413 paths.
		s := New(Config{MaxInputs: 16, MaxPayloadBytes: 64 << 10, Logger: quietLogger()},
			func(context.Context) (*minilm.Model, error) { return m, nil })
		s.release = func(*minilm.Model) {}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Run(ctx, ln) //nolint:errcheck
		}()
		stopAtExitMu.Lock()
		stopAtExit = append(stopAtExit, func() { cancel(); <-done })
		stopAtExitMu.Unlock()
		waitFor(t, "model loaded", s.Ready)
		fuzzServer = s
	})
	if fuzzServer == nil {
		t.Fatal("fuzz server failed to start")
	}
	return fuzzServer
}

var fuzzContentTypes = []string{"application/json", "", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "application/json; charset"}

func FuzzInvocationsBody(f *testing.F) {
	seeds := []string{
		`{"inputs": "hello"}`, `{"inputs": ["a", "b"]}`, `"bare"`, `["x", ""]`, `{"inputs": []}`, `{}`, `null`,
		`{"inputs": [1, 2]}`, `{"inputs": "\ud800"}`, `{"inputs": "\ud83d\ude00"}`, "{\"inputs\": \"\xff\"}",
		`[` + `"a",` + `"b",` + `"c",` + `"d",` + `"e",` + `"f",` + `"g",` + `"h",` + `"i",` + `"j",` + `"k",` + `"l",` + `"m",` + `"n",` + `"o",` + `"p",` + `"q"]`,
		`{"inputs": "[CLS] [SEP] [PAD] [MASK] [UNK]"}`, `{"inputs": ["\u0000\u001f", "\t\n"]}`, `{"inputs":"a"}{}`, `[[]]`, `{"inputs": {"inputs": "a"}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i%3), []byte(s))
	}
	f.Add(uint8(3), []byte(`{"inputs": "x"}`))
	f.Fuzz(func(t *testing.T, ct uint8, body []byte) {
		s := sharedFuzzServer(t)
		req := httptest.NewRequest(http.MethodPost, "/invocations", bytes.NewReader(body))
		if c := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		require.True(t, json.Valid(rec.Body.Bytes()), "response is not JSON: %q", rec.Body.Bytes())
		if rec.Code != http.StatusOK {
			errorType(t, rec.Body.Bytes())
			return
		}
		var got struct {
			Embeddings [][]float32 `json:"embeddings"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.NotEmpty(t, got.Embeddings)
		for _, v := range got.Embeddings {
			require.Len(t, v, sharedModel(t).Dim())
		}
	})
}
