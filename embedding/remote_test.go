package embedding

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeInvocations answers /invocations with the vector [len(text), i] for
// the i-th text of the request, after failing the first `busy` requests
// with 429.
func fakeInvocations(t *testing.T, busy int32, edit func([][]float32) [][]float32) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/invocations" || r.Method != http.MethodPost {
			http.Error(w, "wrong route", http.StatusNotFound)
			return
		}
		if n <= busy {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"server is busy","type":"rate_limit_exceeded"}}`)
			return
		}
		var req struct{ Inputs []string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, err.Error())
			return
		}
		vecs := make([][]float32, len(req.Inputs))
		for i, s := range req.Inputs {
			vecs[i] = []float32{float32(len(s)), float32(i)}
		}
		if edit != nil {
			vecs = edit(vecs)
		}
		json.NewEncoder(w).Encode(map[string]any{"embeddings": vecs}) //nolint:errcheck
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRemoteBatchesInOrder(t *testing.T) {
	srv, calls := fakeInvocations(t, 1, nil)
	texts := []string{"a", "bb", "ccc", "dddd", "eeeee"}
	got, err := Remote{URL: srv.URL + "/"}.Encode(context.Background(), texts, 2)
	require.NoError(t, err)
	require.Len(t, got, 5)
	for i, v := range got {
		assert.Equal(t, float32(len(texts[i])), v[0])
		assert.Equal(t, float32(i%2), v[1], "index within its batch of 2")
	}
	assert.EqualValues(t, 4, calls.Load(), "one 429, then 3 batches")
}

func TestRemoteErrors(t *testing.T) {
	ctx := context.Background()
	srv, _ := fakeInvocations(t, 100, nil)
	_, err := Remote{URL: srv.URL, Retries: 2}.Encode(ctx, []string{"a"}, 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "429")
	assert.Contains(t, err.Error(), "server is busy")

	short, _ := fakeInvocations(t, 0, func(v [][]float32) [][]float32 { return v[:len(v)-1] })
	_, err = Remote{URL: short.URL}.Encode(ctx, []string{"a", "b"}, 0)
	assert.ErrorContains(t, err, "sent 2 texts, got 1 vectors")

	ragged, _ := fakeInvocations(t, 0, func(v [][]float32) [][]float32 { v[1] = v[1][:1]; return v })
	_, err = Remote{URL: ragged.URL}.Encode(ctx, []string{"a", "b"}, 0)
	assert.ErrorContains(t, err, "text 1: vector of 1 values, want 2")

	_, err = Remote{URL: "ftp://x"}.Encode(ctx, []string{"a"}, 0)
	assert.ErrorContains(t, err, "must start with http")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	_, err = Remote{URL: dead}.Encode(ctx, []string{"a"}, 0)
	assert.ErrorContains(t, err, "connection refused")
}

func TestRemoteSplitsOversizeBatches(t *testing.T) {
	srv, calls := fakeInvocations(t, 0, nil)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = 'x'
	}
	texts := []string{string(big), string(big), string(big), string(big)} // 8 MiB in one batch
	got, err := Remote{URL: srv.URL}.Encode(context.Background(), texts, 4)
	require.NoError(t, err)
	assert.Len(t, got, 4)
	assert.Greater(t, calls.Load(), int32(1), "split under the 6 MB payload limit")

	huge := string(make([]byte, 7<<20))
	_, err = Remote{URL: srv.URL}.Encode(context.Background(), []string{huge}, 1)
	assert.ErrorContains(t, err, "payload limit")
}
