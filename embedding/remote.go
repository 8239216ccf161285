package embedding

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultRemoteBatch is how many texts Remote sends in one request.
const DefaultRemoteBatch = 64

// maxRemoteBody is SageMaker's invocation payload limit, which embtune
// serve also applies: a batch whose body would pass it is split.
const maxRemoteBody = 6 << 20

// Remote embeds through a server that speaks the SageMaker inference
// container's contract: POST {URL}/invocations with {"inputs": [...]},
// answered by {"embeddings": [[...], ...]}. embtune serve is one. It
// retries 429 and 503 (honouring Retry-After) a few times, and checks that
// every answer has one finite vector per text, all of one dimension.
type Remote struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Client defaults to a client with a 2-minute timeout.
	Client *http.Client
	// Retries bounds the retries of one request on 429/503 (default 4).
	Retries int
}

// Encode implements Encoder.
func (r Remote) Encode(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	base := strings.TrimRight(r.URL, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("remote encoder: URL %q must start with http:// or https://", r.URL)
	}
	vecs, err := InBatches(ctx, texts, batchSize, func(ctx context.Context, batch []string) ([][]float32, error) {
		body, err := json.Marshal(map[string][]string{"inputs": batch})
		if err != nil {
			return nil, err
		}
		return r.post(ctx, base+"/invocations", body)
	})
	if err != nil {
		return nil, fmt.Errorf("remote encoder: %w", err)
	}
	return vecs, nil
}

// InBatches embeds texts with send, batchSize texts at a time (0:
// DefaultRemoteBatch), halving a batch whose {"inputs": [...]} body would
// pass SageMaker's 6 MB payload limit. It checks that every batch comes
// back with one finite vector per text, all of one dimension, and returns
// the vectors in order. Remote and sagemaker.Endpoint share it.
func InBatches(ctx context.Context, texts []string, batchSize int, send func(context.Context, []string) ([][]float32, error)) ([][]float32, error) {
	if batchSize <= 0 {
		batchSize = DefaultRemoteBatch
	}
	out := make([][]float32, 0, len(texts))
	dim := 0
	for start := 0; start < len(texts); {
		end := min(start+batchSize, len(texts))
		for end-start > 1 && bodySize(texts[start:end]) > maxRemoteBody {
			end = start + (end-start)/2
		}
		if n := bodySize(texts[start:end]); n > maxRemoteBody {
			return nil, fmt.Errorf("text %d alone is %d bytes of JSON, over the %d-byte payload limit", start, n, maxRemoteBody)
		}
		vecs, err := send(ctx, texts[start:end])
		if err != nil {
			return nil, fmt.Errorf("texts %d-%d: %w", start, end-1, err)
		}
		if len(vecs) != end-start {
			return nil, fmt.Errorf("sent %d texts, got %d vectors", end-start, len(vecs))
		}
		for i, v := range vecs {
			if dim == 0 {
				dim = len(v)
			}
			if len(v) == 0 || len(v) != dim {
				return nil, fmt.Errorf("text %d: vector of %d values, want %d", start+i, len(v), dim)
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return nil, fmt.Errorf("text %d: the vector is not finite", start+i)
				}
			}
		}
		out = append(out, vecs...)
		start = end
	}
	return out, nil
}

// bodySize is the length of {"inputs": texts} as JSON.
func bodySize(texts []string) int {
	b, err := json.Marshal(map[string][]string{"inputs": texts})
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}

func (r Remote) post(ctx context.Context, url string, body []byte) ([][]float32, error) {
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	retries := r.Retries
	if retries <= 0 {
		retries = 4
	}
	wait := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			var res struct {
				Embeddings [][]float32 `json:"embeddings"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return nil, fmt.Errorf("the answer is not {\"embeddings\": [[...]]}: %w", err)
			}
			return res.Embeddings, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < retries:
			d := wait
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				d = time.Duration(min(s, 60)) * time.Second
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
			wait = min(2*wait, 10*time.Second)
		default:
			return nil, fmt.Errorf("%s: %s", resp.Status, errorMessage(raw))
		}
	}
}

// errorMessage pulls the message out of an OpenAI- or TEI-shaped error
// body, or returns the body itself, shortened.
func errorMessage(raw []byte) string {
	var oa struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &oa) == nil && oa.Error.Message != "" {
		return oa.Error.Message
	}
	var tei struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &tei) == nil && tei.Error != "" {
		return tei.Error
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return errors.New("empty body").Error()
	}
	return s
}
