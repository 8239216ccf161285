package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// handleOpenAI is OpenAI's POST /v1/embeddings (openAIRequest).
func (s *Server) handleOpenAI(w http.ResponseWriter, r *http.Request) error {
	body, err := s.begin(w, r)
	if err != nil {
		return err
	}
	req, err := decodeOpenAI(body, s.cfg.MaxInputs, s.core.Dim())
	if err != nil {
		return err
	}
	res, err := s.core.Embed(r.Context(), req.embedInput)
	if err != nil {
		return err
	}
	name := s.cfg.ModelName
	if name == "" {
		name = req.Model
	}
	buf, err := encodeOpenAI(res, name, req.Base64)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.Truncated))
	writeJSON(w, http.StatusOK, buf)
	return nil
}

// encodeOpenAI writes {"object": "list", "data": [{"object":
// "embedding", "index", "embedding"}], "model", "usage"}, each embedding
// as floats or, with b64, as base64 of little-endian float32s.
func encodeOpenAI(res embeddings, model string, b64 bool) ([]byte, error) {
	nameJSON, _ := json.Marshal(model) //nolint:errchkjson // a string
	dim := 0
	if len(res.Vectors) > 0 {
		dim = len(res.Vectors[0])
	}
	buf := make([]byte, 0, 128+len(res.Vectors)*(64+dim*12))
	buf = append(buf, `{"object":"list","data":[`...)
	for i, v := range res.Vectors {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"object":"embedding","index":`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `,"embedding":`...)
		if b64 {
			buf = append(buf, '"')
			buf = appendBase64(buf, v)
			buf = append(buf, '"')
		} else {
			var err error
			if buf, err = appendVector(buf, v); err != nil {
				return nil, err
			}
		}
		buf = append(buf, '}')
	}
	buf = append(buf, `],"model":`...)
	buf = append(buf, nameJSON...)
	buf = append(buf, `,"usage":{"prompt_tokens":`...)
	buf = strconv.AppendInt(buf, int64(res.Tokens), 10)
	buf = append(buf, `,"total_tokens":`...)
	buf = strconv.AppendInt(buf, int64(res.Tokens), 10)
	return append(buf, "}}"...), nil
}
