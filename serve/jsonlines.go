package serve

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/embtune/embtune/hf"
)

// JSONLinesType is the media type SageMaker Batch Transform sends with
// SplitType=Line and ContentType application/jsonlines, and that
// /invocations answers it with.
const JSONLinesType = "application/jsonlines"

// DefaultMaxConcurrentTransforms is what GET /execution-parameters asks
// Batch Transform to send at once: enough concurrent requests that
// tokenizing and HTTP overlap the forward passes, which the batcher shares
// across requests anyway; more would only queue.
const DefaultMaxConcurrentTransforms = 4

// isJSONLines reports a JSON Lines body (application/jsonlines, or the
// x-/jsonl spellings some clients use).
func isJSONLines(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case JSONLinesType, "application/x-jsonlines", "application/jsonl", "application/x-ndjson":
		return true
	}
	return false
}

// handleExecutionParameters is GET /execution-parameters, which SageMaker
// Batch Transform asks a container before it sends records: the request
// limits this server was configured with.
func (s *Server) handleExecutionParameters(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(struct {
		MaxConcurrentTransforms int    `json:"MaxConcurrentTransforms"`
		BatchStrategy           string `json:"BatchStrategy"`
		MaxPayloadInMB          int64  `json:"MaxPayloadInMB"`
	}{DefaultMaxConcurrentTransforms, "MULTI_RECORD", max(1, s.cfg.MaxPayloadBytes>>20)})
	writeJSON(w, http.StatusOK, b)
}

// handleInvocationsJSONLines is POST /invocations with a JSON Lines body:
// one text per line, as a JSON string or {"text": ...} (other keys are
// ignored, so the chunks of embtune index --write-chunks go as they are).
// It answers one embedding per line, as a JSON array, in input order. The
// body is bounded by MaxPayloadBytes (413), not by MaxInputs: lines are
// embedded MaxInputs at a time.
func (s *Server) handleInvocationsJSONLines(w http.ResponseWriter, r *http.Request) {
	m := s.model.Load()
	if m == nil {
		s.begin(w, r) // answers 503 and why
		return
	}
	body, aerr := readBody(w, r, s.cfg.MaxPayloadBytes)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	texts, aerr := parseJSONLines(body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := make([]byte, 0, len(texts)*m.Dim()*11)
	truncated := 0
	for start := 0; start < len(texts); start += s.cfg.MaxInputs {
		part := texts[start:min(start+s.cfg.MaxInputs, len(texts))]
		res, aerr := s.embed(r.Context(), m, "invocations", part, m.Prompt(hf.RoleDefault), true, true)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		truncated += res.truncated
		for i, v := range res.vecs {
			var err error
			if out, err = appendVector(out, v); err != nil {
				writeError(w, errorf(http.StatusInternalServerError, typeInternal, "line %d: %v", start+i+1, err))
				return
			}
			out = append(out, '\n')
		}
	}
	h := w.Header()
	h.Set("Content-Type", JSONLinesType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set(TruncatedHeader, strconv.Itoa(truncated))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// parseJSONLines reads one text per line. Lines end in \n or \r\n; a final
// newline is optional; an empty line in the middle is an error, since
// output line i must answer input line i.
func parseJSONLines(body []byte) ([]string, *apiError) {
	body = bytes.TrimRight(body, "\r\n")
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest(`request body is empty; send one text per line, as "text" or {"text": "..."}`)
	}
	lines := bytes.Split(body, []byte("\n"))
	texts := make([]string, len(lines))
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		var err error
		switch firstByte(line) {
		case 0:
			return nil, badRequest("line %d is empty; send one text per line", i+1)
		case '"':
			err = json.Unmarshal(line, &texts[i])
		case '{':
			var rec struct {
				Text *string `json:"text"`
			}
			if err = json.Unmarshal(line, &rec); err == nil && rec.Text == nil {
				return nil, badRequest(`line %d has no "text" string`, i+1)
			}
			if err == nil {
				texts[i] = *rec.Text
			}
		default:
			return nil, badRequest(`line %d must be a JSON string or an object {"text": "..."}`, i+1)
		}
		if err != nil {
			msg := jsonError(err).msg
			if strings.Contains(err.Error(), "cannot unmarshal") {
				msg = `"text" must be a string`
			}
			return nil, badRequest("line %d: %s", i+1, msg)
		}
	}
	return texts, nil
}
