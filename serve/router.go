package serve

import (
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// handlerFunc is a route: it decodes the request, calls the core and
// writes the answer, or returns the error for its route family to write.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// errorWriter answers an error in one route family's shape: writeError
// (OpenAI's, which SageMaker's and embtune's own routes share) or
// writeTEIError.
type errorWriter func(http.ResponseWriter, error)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	get := []string{http.MethodGet, http.MethodHead}
	s.handle(mux, "/ping", "ping", writeError, s.handlePing, get...)
	s.handle(mux, "/invocations", "invocations", writeError, s.handleInvocations, http.MethodPost)
	// The SageMaker runtime API's own path, so that boto3's
	// invoke_endpoint(EndpointName=...) with endpoint_url at this server
	// works; the server has one model, whatever the endpoint's name.
	s.handle(mux, "/endpoints/{endpoint}/invocations", "invocations", writeError, s.handleInvocations, http.MethodPost)
	s.handle(mux, "/embed", "embed", writeTEIError, s.handleEmbed, http.MethodPost)
	s.handle(mux, "/tokenize", "tokenize", writeTEIError, s.handleTokenize, http.MethodPost)
	s.handle(mux, "/health", "health", writeTEIError, s.handleHealth, get...)
	s.handle(mux, "/info", "info", writeTEIError, s.handleInfo, get...)
	s.handle(mux, "/v1/embeddings", "openai", writeError, s.handleOpenAI, http.MethodPost)
	s.handle(mux, "/v1/models", "models", writeError, s.handleModels, get...)
	s.handle(mux, "/v1/models/", "models", writeError, s.handleModels, get...)
	// TEI serves /embed on POST / as well; huggingface_hub's InferenceClient
	// (model=URL).feature_extraction posts there.
	s.handle(mux, "/{$}", "embed", writeTEIError, s.handleEmbed, http.MethodPost)
	s.handle(mux, "/search", "search", writeError, s.handleSearch, http.MethodPost)
	s.handle(mux, "/execution-parameters", "execution_parameters", writeError, s.handleExecutionParameters, http.MethodGet)
	s.handle(mux, "/metrics", "metrics", writeError, s.handleMetrics, get...)
	// One label for every unknown path keeps /metrics' cardinality bounded.
	mux.Handle("/", s.instrument("other", writeError, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(KindNotFound, "no route %s %s", r.Method, r.URL.Path))
	}))
	return mux
}

// handle registers a route with its allowed methods and its family's error
// shape; the mux's own 405 is plain text, and clients of these APIs expect
// JSON errors.
func (s *Server) handle(mux *http.ServeMux, path, route string, writeErr errorWriter, h handlerFunc, methods ...string) {
	allow := strings.Join(methods, ", ")
	mux.Handle(path, s.instrument(route, writeErr, func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header().Set("Allow", allow)
			writeErr(w, errorf(KindMethod, "%s does not accept %s; use %s", path, r.Method, allow))
			return
		}
		if err := h(w, r); err != nil {
			writeErr(w, err)
		}
	}))
}

// begin runs the checks every JSON embedding route shares, in the order a
// client can act on: media type, model readiness, body size and text.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, errorf(KindMediaType, "Content-Type %q is not supported; send application/json", ct)
	}
	if _, err := s.core.Model(); err != nil {
		return nil, err
	}
	return readBody(w, r, s.cfg.MaxPayloadBytes)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// instrument counts requests by route and status, and turns a panic into a
// 500, in the route family's error shape (writeErr), so that no input can
// take the server down.
func (s *Server) instrument(route string, writeErr errorWriter, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.log.Error("handler panicked", "route", route, "panic", p, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeErr(sw, errorf(KindInternal, "internal error"))
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
