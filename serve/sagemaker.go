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
// The Accept header chooses the answer's format (accept.go): JSON (the
// default), JSON Lines, CSV or NumPy; a text/csv body holds one text per line.
func (s *Server) handleInvocations(w http.ResponseWriter, r *http.Request) error {
	format, err := acceptedFormat(r.Header.Get("Accept"))
	if err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	if isJSONLines(ct) {
		// Batch Transform's records: the answer is JSON Lines, line for line.
		if format != answerJSON && format != answerJSONLines {
			return errorf(KindNotAcceptable, "a JSON Lines request is answered in JSON Lines (Accept: %s)", JSONLinesType)
		}
		return s.handleInvocationsJSONLines(w, r)
	}
	var in embedInput
	if isCSV(ct) {
		if _, err := s.core.Model(); err != nil {
			return err
		}
		body, err := readBody(w, r, s.cfg.MaxPayloadBytes)
		if err != nil {
			return err
		}
		if in, err = decodeCSVInvocations(body, s.cfg.MaxInputs); err != nil {
			return err
		}
	} else {
		body, err := s.begin(w, r)
		if err != nil {
			return err
		}
		if in, err = decodeInvocations(body, s.cfg.MaxInputs); err != nil {
			return err
		}
	}
	res, err := s.core.Embed(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.Truncated))
	return writeAnswer(w, format, res.Vectors, s.core.Dim())
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
