package serve

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/embtune/embtune/hf"
)

// JSONLinesType is the media type SageMaker Batch Transform sends with
// SplitType=Line and ContentType application/jsonlines, and that
// /invocations answers it with.
const JSONLinesType = "application/jsonlines"

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

// handleInvocationsJSONLines is POST /invocations with a JSON Lines body:
// one text per line, as a JSON string or {"text": ...} (other keys are
// ignored, so the chunks of embtune index --write-chunks go as they are).
// It answers one embedding per line, as a JSON array, in input order. The
// body is bounded by MaxPayloadBytes (413), not by MaxInputs: lines are
// embedded MaxInputs at a time.
func (s *Server) handleInvocationsJSONLines(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.core.Model(); err != nil {
		return err // 503 and why
	}
	body, err := readBody(w, r, s.cfg.MaxPayloadBytes)
	if err != nil {
		return err
	}
	texts, err := parseJSONLines(body)
	if err != nil {
		return err
	}
	out := make([]byte, 0, len(texts)*s.core.Dim()*11)
	truncated := 0
	for start := 0; start < len(texts); start += s.cfg.MaxInputs {
		part := texts[start:min(start+s.cfg.MaxInputs, len(texts))]
		res, err := s.core.Embed(r.Context(), embedInput{
			Route: "invocations", Texts: part, Role: hf.RoleDefault, Truncate: true, Normalize: true,
		})
		if err != nil {
			return err
		}
		truncated += res.Truncated
		for i, v := range res.Vectors {
			if out, err = appendVector(out, v); err != nil {
				return errorf(KindInternal, "line %d: %w", start+i+1, err)
			}
			out = append(out, '\n')
		}
	}
	h := w.Header()
	h.Set("Content-Type", JSONLinesType)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set(TruncatedHeader, strconv.Itoa(truncated))
	w.WriteHeader(http.StatusOK)
	w.Write(out) //nolint:errcheck // the client may be gone; nothing to do
	return nil
}
