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
// body is bounded by MaxPayloadBytes and its lines by MaxLines (413);
// lines are embedded MaxInputs at a time.
//
// The answer is written as each group of lines is embedded, not held:
// a body that fits one group is answered whole, with Content-Length and
// the X-Embtune-Truncated header; a longer one streams, its truncation
// count sent as a trailer. An error after the first group has been sent
// can no longer change the status: the response is aborted, so the
// client sees a broken answer, never a short one that looks whole.
func (s *Server) handleInvocationsJSONLines(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.core.Model(); err != nil {
		return err // 503 and why
	}
	body, err := readBody(w, r, s.cfg.MaxPayloadBytes)
	if err != nil {
		return err
	}
	if err := checkLines(body, s.cfg.MaxLines); err != nil {
		return err
	}
	texts, err := parseJSONLines(body)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", JSONLinesType)
	streamed := len(texts) > s.cfg.MaxInputs
	if streamed {
		h.Set("Trailer", TruncatedHeader)
	}
	var out []byte
	truncated := 0
	for start := 0; start < len(texts); start += s.cfg.MaxInputs {
		part := texts[start:min(start+s.cfg.MaxInputs, len(texts))]
		res, err := s.core.Embed(r.Context(), embedInput{
			Route: "invocations", Texts: part, Role: hf.RoleDefault, Truncate: true, Normalize: true,
		})
		if err == nil {
			out = out[:0]
			for i, v := range res.Vectors {
				if out, err = appendVector(out, v); err != nil {
					err = errorf(KindInternal, "line %d: %w", start+i+1, err)
					break
				}
				out = append(out, '\n')
			}
		}
		if err != nil {
			if start == 0 {
				return err
			}
			s.log.Error("JSON Lines answer aborted after its first lines were sent", "lines_sent", start, "lines", len(texts), "err", err)
			panic(http.ErrAbortHandler)
		}
		truncated += res.Truncated
		if !streamed {
			h.Set("Content-Length", strconv.Itoa(len(out)))
			h.Set(TruncatedHeader, strconv.Itoa(truncated))
		}
		if start == 0 {
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(out); err != nil {
			return nil // the client is gone; nothing to answer
		}
	}
	if streamed {
		h.Set(TruncatedHeader, strconv.Itoa(truncated))
	}
	return nil
}
