package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// SageMaker's inference container contract: GET /ping, POST /invocations
// (JSON here, JSON Lines in jsonlines.go) and Batch Transform's GET
// /execution-parameters. Errors take OpenAI's shape (writeError).

func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request) error {
	type status struct {
		Status string     `json:"status"`
		Error  *errorBody `json:"error,omitempty"`
	}
	var code int
	var body status
	switch err := s.LoadErr(); {
	case s.Ready():
		code, body = http.StatusOK, status{Status: "ok"}
	case err != nil:
		code, body = http.StatusServiceUnavailable, status{"failed", &errorBody{"model failed to load: " + err.Error(), typeLoadFailed}}
	default:
		w.Header().Set("Retry-After", "5")
		code, body = http.StatusServiceUnavailable, status{"loading", &errorBody{"model is loading", typeNotReady}}
	}
	b, _ := json.Marshal(body) //nolint:errchkjson // strings only
	writeJSON(w, code, b)
	return nil
}

// handleInvocations answers {"embeddings": [[...], ...]}, and the number of
// inputs cut at max_seq_length in TruncatedHeader.
func (s *Server) handleInvocations(w http.ResponseWriter, r *http.Request) error {
	if isJSONLines(r.Header.Get("Content-Type")) {
		return s.handleInvocationsJSONLines(w, r)
	}
	body, err := s.begin(w, r)
	if err != nil {
		return err
	}
	in, err := decodeInvocations(body, s.cfg.MaxInputs)
	if err != nil {
		return err
	}
	res, err := s.core.Embed(r.Context(), in)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 16+len(res.Vectors)*s.core.Dim()*12)
	buf = append(buf, `{"embeddings":`...)
	if buf, err = appendMatrix(buf, res.Vectors); err != nil {
		return errorf(KindInternal, "%w", err)
	}
	buf = append(buf, '}')
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.Truncated))
	writeJSON(w, http.StatusOK, buf)
	return nil
}

// DefaultMaxConcurrentTransforms is what GET /execution-parameters asks
// Batch Transform to send at once: enough concurrent requests that
// tokenizing and HTTP overlap the forward passes, which the batcher shares
// across requests anyway; more would only queue.
const DefaultMaxConcurrentTransforms = 4

// handleExecutionParameters is GET /execution-parameters, which SageMaker
// Batch Transform asks a container before it sends records: the request
// limits this server was configured with.
func (s *Server) handleExecutionParameters(w http.ResponseWriter, _ *http.Request) error {
	b, _ := json.Marshal(struct {
		MaxConcurrentTransforms int    `json:"MaxConcurrentTransforms"`
		BatchStrategy           string `json:"BatchStrategy"`
		MaxPayloadInMB          int64  `json:"MaxPayloadInMB"`
	}{DefaultMaxConcurrentTransforms, "MULTI_RECORD", max(1, s.cfg.MaxPayloadBytes>>20)})
	writeJSON(w, http.StatusOK, b)
	return nil
}
