package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "/ping", "ping", s.handlePing, http.MethodGet, http.MethodHead)
	s.handle(mux, "/invocations", "invocations", s.handleInvocations, http.MethodPost)
	s.handleTEI(mux, "/embed", "embed", s.handleEmbed, http.MethodPost)
	s.handleTEI(mux, "/health", "health", s.handleHealth, http.MethodGet, http.MethodHead)
	s.handleTEI(mux, "/info", "info", s.handleInfo, http.MethodGet, http.MethodHead)
	s.handle(mux, "/v1/embeddings", "openai", s.handleOpenAI, http.MethodPost)
	s.handle(mux, "/search", "search", s.handleSearch, http.MethodPost)
	s.handle(mux, "/execution-parameters", "execution_parameters", s.handleExecutionParameters, http.MethodGet)
	s.handle(mux, "/metrics", "metrics", s.handleMetrics, http.MethodGet, http.MethodHead)
	// One label for every unknown path keeps /metrics' cardinality bounded.
	mux.Handle("/", s.instrument("other", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, typeNotFound, "no route %s %s", r.Method, r.URL.Path))
	}))
	return mux
}

// handle registers a route with its allowed methods; the mux's own 405 is
// plain text, and clients of these APIs expect JSON errors.
func (s *Server) handle(mux *http.ServeMux, path, route string, h http.HandlerFunc, methods ...string) {
	s.handleStyled(mux, path, route, false, h, methods...)
}

// handleTEI registers a TEI route, whose errors (405 included) take TEI's
// shape.
func (s *Server) handleTEI(mux *http.ServeMux, path, route string, h http.HandlerFunc, methods ...string) {
	s.handleStyled(mux, path, route, true, h, methods...)
}

func (s *Server) handleStyled(mux *http.ServeMux, path, route string, tei bool, h http.HandlerFunc, methods ...string) {
	allow := strings.Join(methods, ", ")
	mux.Handle(path, s.instrument(route, func(w http.ResponseWriter, r *http.Request) {
		if tei {
			w = teiWriter{w}
		}
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			writeError(w, errorf(http.StatusMethodNotAllowed, typeMethod, "%s does not accept %s; use %s", path, r.Method, allow))
			return
		}
		h(w, r)
	}))
}

// instrument counts requests by route and status, and turns a panic into a
// 500 so that no input can take the server down.
func (s *Server) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.log.Error("handler panicked", "route", route, "panic", p, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeError(sw, errorf(http.StatusInternalServerError, typeInternal, "internal error"))
				}
			}
			code := sw.code
			switch {
			case code != 0:
			case p != nil: // aborted before anything was written
				code = http.StatusInternalServerError
			default: // net/http sends 200 for a handler that wrote nothing
				code = http.StatusOK
			}
			s.metrics.observeRequest(route, code, time.Since(start).Seconds())
			if p == http.ErrAbortHandler {
				panic(p) // net/http's way to abort a response; it logs nothing
			}
		}()
		h(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request) {
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
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.handler().ServeHTTP(w, r)
}

// begin runs the checks every embedding route shares, in the order a
// client can act on: media type, model readiness, body size and text.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) (*minilm.Model, []byte, bool) {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		writeError(w, errorf(http.StatusUnsupportedMediaType, typeMediaType, "Content-Type %q is not supported; send application/json", ct))
		return nil, nil, false
	}
	m := s.model.Load()
	if m == nil {
		if err := s.LoadErr(); err != nil {
			writeError(w, errorf(http.StatusServiceUnavailable, typeLoadFailed, "model failed to load: %v", err))
		} else {
			w.Header().Set("Retry-After", "5")
			writeError(w, errorf(http.StatusServiceUnavailable, typeNotReady, "model is still loading; retry shortly"))
		}
		return nil, nil, false
	}
	body, aerr := readBody(w, r, s.cfg.MaxPayloadBytes)
	if aerr != nil {
		writeError(w, aerr)
		return nil, nil, false
	}
	return m, body, true
}

type embedded struct {
	vecs      [][]float32
	tokens    int
	truncated int
}

// embed tokenizes texts in the caller's goroutine, so tokenizing runs in
// parallel across requests, and queues the ids for the batcher. prompt is
// prepended to every text (see requestPrompt); its tokens count towards
// max_seq_length, as in sentence-transformers.
func (s *Server) embed(ctx context.Context, m *minilm.Model, route string, texts []string, prompt string, truncate, norm bool) (embedded, *apiError) {
	seqs := make([][]int64, len(texts))
	var out embedded
	for i, text := range texts {
		text = prompt + text
		ids, cut, err := m.Prepare(text) // as Encode prepares it
		if err != nil {
			if errors.Is(err, hf.ErrInvalidUTF8) {
				return out, badRequest("input %d: %v", i, err)
			}
			return out, errorf(http.StatusInternalServerError, typeInternal, "tokenizing input %d: %v", i, err)
		}
		if cut {
			if !truncate {
				n, _ := m.Text().Length(text) // the prompt included
				return out, errorf(http.StatusRequestEntityTooLarge, typeTooLarge,
					"input %d has %d tokens, more than max_seq_length %d; shorten it or send \"truncate\": true", i, n, m.MaxSeqLength)
			}
			out.truncated++
		}
		out.tokens += len(ids)
		seqs[i] = ids
	}
	vecs, err := s.batcher.submit(ctx, seqs)
	switch {
	case err == nil:
	case errors.Is(err, errQueueFull):
		return out, errorf(http.StatusTooManyRequests, typeRateLimit, "server is busy: more than %d inputs queued; retry later", s.cfg.MaxQueue)
	case errors.Is(err, errShuttingDown):
		return out, errorf(http.StatusServiceUnavailable, typeUnavailable, "server is shutting down")
	case ctx.Err() != nil:
		return out, errorf(499, typeClientCancelled, "request cancelled")
	default:
		s.log.Error("inference failed", "route", route, "err", err)
		return out, errorf(http.StatusInternalServerError, typeInternal, "inference failed: %v", err)
	}
	// The all-MiniLM folders end in a Normalize module, which the encoder
	// already applies; other folders get it here when asked.
	if norm && !m.Folder.Normalize {
		for _, v := range vecs {
			vecmath.Normalize(v, v)
		}
	}
	out.vecs = truncateVectors(vecs, s.cfg.TruncateDim, norm)
	s.metrics.observeInputs(route, len(texts), out.truncated, out.tokens)
	return out, nil
}

// requestPrompt resolves a request's prompt_name (TEI's field) among the
// folder's prompts; none gives the default prompt, as encode() without
// prompt_name. A name the folder does not define is a 422, TEI's
// Validation error.
func requestPrompt(m *minilm.Model, name *string) (string, *apiError) {
	if name == nil {
		return m.Prompt(hf.RoleDefault), nil
	}
	if *name == "" {
		return "", errorf(http.StatusUnprocessableEntity, typeInvalidRequest, "prompt_name is empty; omit it for the default prompt")
	}
	p, err := m.PromptByName(*name, hf.RoleDefault)
	if err != nil {
		return "", errorf(http.StatusUnprocessableEntity, typeInvalidRequest, "prompt_name %q is not defined; this model's prompts are %s",
			*name, m.Folder.PromptNames())
	}
	return p, nil
}

func (s *Server) handleInvocations(w http.ResponseWriter, r *http.Request) {
	if isJSONLines(r.Header.Get("Content-Type")) {
		s.handleInvocationsJSONLines(w, r)
		return
	}
	m, body, ok := s.begin(w, r)
	if !ok {
		return
	}
	texts, promptName, aerr := parseInvocations(body, s.cfg.MaxInputs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	prompt, aerr := requestPrompt(m, promptName)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	res, aerr := s.embed(r.Context(), m, "invocations", texts, prompt, true, true)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	buf := make([]byte, 0, 16+len(res.vecs)*m.Dim()*12)
	buf = append(buf, `{"embeddings":`...)
	buf, err := appendMatrix(buf, res.vecs)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, typeInternal, "%v", err))
		return
	}
	buf = append(buf, '}')
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.truncated))
	writeJSON(w, http.StatusOK, buf)
}

// handleEmbed is Hugging Face text-embeddings-inference's /embed. Unlike
// TEI, truncate defaults to true (sentence-transformers' behaviour).
// normalize false returns the model's own output, which for folders with a
// Normalize module is normalised anyway, as in sentence-transformers.
func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request) {
	m, body, ok := s.begin(w, r)
	if !ok {
		return
	}
	if firstByte(body) != '{' {
		writeError(w, badRequest(`request body must be a JSON object {"inputs": ...}`))
		return
	}
	var req struct {
		Inputs              json.RawMessage `json:"inputs"`
		Normalize           *bool           `json:"normalize"`
		Truncate            *bool           `json:"truncate"`
		TruncationDirection *string         `json:"truncation_direction"`
		PromptName          *string         `json:"prompt_name"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, jsonError(err))
		return
	}
	if d := req.TruncationDirection; d != nil && !strings.EqualFold(*d, "right") {
		writeError(w, badRequest("truncation_direction %q is not supported; only \"Right\"", *d))
		return
	}
	texts, aerr := decodeInputs(req.Inputs, "`inputs`", s.cfg.MaxInputs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	prompt, aerr := requestPrompt(m, req.PromptName)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	truncate := req.Truncate == nil || *req.Truncate
	norm := req.Normalize == nil || *req.Normalize
	res, aerr := s.embed(r.Context(), m, "embed", texts, prompt, truncate, norm)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	buf, err := appendMatrix(make([]byte, 0, len(res.vecs)*m.Dim()*12), res.vecs)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, typeInternal, "%v", err))
		return
	}
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.truncated))
	writeJSON(w, http.StatusOK, buf)
}

// handleOpenAI is OpenAI's POST /v1/embeddings.
func (s *Server) handleOpenAI(w http.ResponseWriter, r *http.Request) {
	m, body, ok := s.begin(w, r)
	if !ok {
		return
	}
	if firstByte(body) != '{' {
		writeError(w, badRequest(`request body must be a JSON object {"input": ..., "model": ...}`))
		return
	}
	var req struct {
		Input          json.RawMessage `json:"input"`
		Model          string          `json:"model"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, jsonError(err))
		return
	}
	b64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		writeError(w, badRequest("encoding_format %q is not supported; use \"float\" or \"base64\"", req.EncodingFormat))
		return
	}
	served := s.dim(m)
	if d := req.Dimensions; d != nil && (*d < 1 || *d > served) {
		writeError(w, badRequest("dimensions %d is not supported: give 1 to %d (this model's embedding dimension)", *d, served))
		return
	}
	texts, aerr := decodeInputs(req.Input, "`input`", s.cfg.MaxInputs)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	// OpenAI's request has no prompt field: inputs get the default prompt
	// (--default-prompt-name / --default-prompt, else the folder's
	// default_prompt_name), as sentence-transformers' encode() would.
	res, aerr := s.embed(r.Context(), m, "openai", texts, m.Prompt(hf.RoleDefault), true, true)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if d := req.Dimensions; d != nil && *d < served {
		// As OpenAI's text-embedding-3: the first dimensions, re-normalised.
		res.vecs = truncateVectors(res.vecs, *d, true)
	}
	name := s.cfg.ModelName
	if name == "" {
		name = req.Model
	}
	nameJSON, _ := json.Marshal(name) //nolint:errchkjson // a string
	buf := make([]byte, 0, 128+len(res.vecs)*(64+m.Dim()*12))
	buf = append(buf, `{"object":"list","data":[`...)
	for i, v := range res.vecs {
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
				writeError(w, errorf(http.StatusInternalServerError, typeInternal, "%v", err))
				return
			}
		}
		buf = append(buf, '}')
	}
	buf = append(buf, `],"model":`...)
	buf = append(buf, nameJSON...)
	buf = append(buf, `,"usage":{"prompt_tokens":`...)
	buf = strconv.AppendInt(buf, int64(res.tokens), 10)
	buf = append(buf, `,"total_tokens":`...)
	buf = strconv.AppendInt(buf, int64(res.tokens), 10)
	buf = append(buf, "}}"...)
	w.Header().Set(TruncatedHeader, strconv.Itoa(res.truncated))
	writeJSON(w, http.StatusOK, buf)
}
