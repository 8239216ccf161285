package serve

import (
	"encoding/json"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/embtune/embtune/hf"
)

// handleEmbed is Hugging Face text-embeddings-inference's /embed: a JSON
// array of vectors (embedRequest has the options).
func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request) error {
	body, err := s.begin(w, r)
	if err != nil {
		return err
	}
	in, err := decodeEmbed(body, s.cfg.MaxInputs)
	if err != nil {
		return err
	}
	res, err := s.core.Embed(r.Context(), in)
	if err != nil {
		return err
	}
	buf, err := appendMatrix(make([]byte, 0, len(res.Vectors)*s.core.Dim()*12), res.Vectors)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.Truncated))
	writeJSON(w, http.StatusOK, buf)
	return nil
}

// writeTEIError answers err in TEI's shape, {"error": "...", "error_type":
// "Validation"}, with error_type one of TEI's ErrorType names: the error
// body of TEI's routes.
func writeTEIError(w http.ResponseWriter, err error) {
	e := asError(err)
	b, jerr := json.Marshal(struct {
		Error     string `json:"error"`
		ErrorType string `json:"error_type"`
	}{e.Msg, e.Kind.teiType()})
	if jerr != nil { // two strings cannot fail; keep the body valid anyway
		b = []byte(`{"error":"internal error","error_type":"Backend"}`)
	}
	writeErrorJSON(w, e.Kind, b)
}

// teiType is the kind's TEI ErrorType name.
func (k ErrorKind) teiType() string {
	switch k {
	case KindOverloaded:
		return "Overloaded"
	case KindNotReady, KindLoadFailed, KindShuttingDown, KindUnavailable:
		return "Unhealthy"
	case KindInternal, KindCancelled:
		return "Backend"
	default: // invalid request, too large, media type, method, not found
		return "Validation"
	}
}

// handleHealth is TEI's GET /health: 200 with an empty body once the model
// is loaded and answers, 503 with a TEI error otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) error {
	switch err := s.LoadErr(); {
	case s.Ready():
		w.WriteHeader(http.StatusOK)
		return nil
	case err != nil:
		return errorf(KindLoadFailed, "model failed to load: %w", err)
	default:
		return errorf(KindNotReady, "model is loading")
	}
}

// teiInfo is TEI's GET /info for an embedding model. Fields embtune has no
// value for (model_sha, sha, docker_label) are null, as in TEI.
type teiInfo struct {
	ModelID               string       `json:"model_id"`
	ModelSHA              *string      `json:"model_sha"`
	ModelDType            string       `json:"model_dtype"`
	ModelType             teiModelType `json:"model_type"`
	MaxConcurrentRequests int          `json:"max_concurrent_requests"`
	MaxInputLength        int          `json:"max_input_length"`
	MaxBatchTokens        int          `json:"max_batch_tokens"`
	MaxBatchRequests      *int         `json:"max_batch_requests"`
	MaxClientBatchSize    int          `json:"max_client_batch_size"`
	AutoTruncate          bool         `json:"auto_truncate"`
	TokenizationWorkers   int          `json:"tokenization_workers"`
	Version               string       `json:"version"`
	SHA                   *string      `json:"sha"`
	DockerLabel           *string      `json:"docker_label"`
}

type teiModelType struct {
	Embedding struct {
		Pooling string `json:"pooling"`
	} `json:"embedding"`
}

// handleInfo is TEI's GET /info. It needs the model (for max_input_length),
// so it is 503 until the model is loaded.
func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) error {
	m, err := s.core.Model()
	if err != nil {
		return s.handleHealth(w, r)
	}
	id, err := s.modelID()
	if err != nil {
		return err
	}
	batch := s.cfg.MaxBatchSize
	info := teiInfo{
		ModelID:    id,
		ModelDType: "float32",
		// Requests are admitted by queued inputs, not by request count;
		// a request is at least one input.
		MaxConcurrentRequests: s.cfg.MaxQueue,
		MaxInputLength:        m.MaxSeqLength,
		MaxBatchTokens:        s.cfg.MaxBatchTokens,
		MaxBatchRequests:      &batch,
		MaxClientBatchSize:    s.cfg.MaxInputs,
		// /embed truncates unless the request says "truncate": false.
		AutoTruncate: true,
		// Each request tokenizes in its own goroutine.
		TokenizationWorkers: runtime.GOMAXPROCS(0),
		Version:             buildVersion(),
	}
	info.ModelType.Embedding.Pooling = teiPooling(m.Folder.Pooling.Modes)
	b, err := json.Marshal(info)
	if err != nil {
		return errorf(KindInternal, "%w", err)
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// buildVersion is the main module's version as the Go toolchain stamped it
// ("(devel)" for a build from a work tree).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// teiPooling names the folder's pooling as TEI's /info does (cls, mean,
// last_token); modes TEI lacks keep sentence-transformers' names, and
// concatenated modes are joined with "+".
func teiPooling(modes []string) string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = m
		if m == hf.PoolLastToken {
			names[i] = "last_token"
		}
	}
	return strings.Join(names, "+")
}
