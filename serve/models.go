package serve

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
)

// openAIModel is one entry of OpenAI's GET /v1/models list.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelID is the served model's name: --served-model-name when set, else
// the model folder's base name (as /info's model_id).
func (s *Server) modelID() (string, error) {
	if s.cfg.ModelName != "" {
		return s.cfg.ModelName, nil
	}
	m, err := s.core.Model()
	if err != nil {
		return "", err
	}
	return filepath.Base(m.Folder.Dir), nil
}

// handleModels is OpenAI's GET /v1/models and GET /v1/models/{id}: clients
// (LangChain's checks, Open WebUI, LiteLLM) list models before they embed.
// The server holds one model; a request to /v1/embeddings may still name
// any model, as TEI accepts any name (see docs/serving.md).
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.core.Model(); err != nil {
		return err
	}
	id, err := s.modelID()
	if err != nil {
		return err
	}
	m := openAIModel{ID: id, Object: "model", OwnedBy: "embtune"}
	var v any = struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{"list", []openAIModel{m}}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/models/"); ok {
		if rest != id {
			return errorf(KindNotFound, "model %q is not served here; this server serves %q", rest, id)
		}
		v = m
	}
	b, err := json.Marshal(v)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}
