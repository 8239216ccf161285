// Package serve is embtune's HTTP embedding server and the SageMaker
// inference container's server, with dynamic batching of inputs across
// concurrent requests:
//
//	GET  /ping            200 once the model is loaded, else 503 and why
//	POST /invocations     {"inputs": "text" | ["a", "b"]}, or a bare string or array
//	                      -> {"embeddings": [[...], ...]}
//	POST /embed           TEI: {"inputs": ..., "normalize": true, "truncate": true} -> [[...], ...]
//	POST /v1/embeddings   OpenAI: {"input": ..., "model": ..., "encoding_format": "float" | "base64"}
//	GET  /health          TEI: 200 once the model is loaded, else 503
//	GET  /info            TEI: the model and the server limits
//	POST /search          {"query": ..., "top_k": 5}, with Config.Index or Config.Store
//	GET  /metrics         Prometheus (client_golang: embtune_*, go_*, process_*)
//
// As in TEI, routes are thin and the core is one place: router.go registers
// the routes; requests.go holds every request type and its checks (body.go
// the raw body's); embedder.go is the core, which owns the model, prompts,
// tokenisation and truncation, the batcher (batcher.go) and normalisation,
// and fails with one *Error type whose Kind each route family maps to its
// status and body (errors.go: OpenAI's shape; tei.go: TEI's).
//
// Vectors are L2-normalised, one per input, in input order. Errors are
// {"error": {"message": ..., "type": ...}}, except on TEI routes, which answer
// TEI's {"error": ..., "error_type": ...}. Inputs longer than
// max_seq_length are truncated (except /embed with "truncate": false, 413)
// and counted in the X-Embtune-Truncated header.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/minilm"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultMaxPayloadBytes = 6 << 20 // SageMaker's invocation payload limit
	DefaultMaxInputs       = 1024
	// DefaultMaxLines bounds a JSON Lines request: 16,384 one-token lines
	// take about a minute on two cores, well inside SageMaker's 600 s
	// invocation timeout.
	DefaultMaxLines       = 16384
	DefaultMaxBatchTokens = 16384
	DefaultMaxBatchSize   = 128
	DefaultMaxQueue       = 4096
	// DefaultBatchWait is no wait, as TEI batches: a batch takes what queued
	// while the previous one ran. With 8 clients a 2 ms wait gave the same
	// 155 requests/s and p50 (TestLoadShort), and one query at a time paid
	// the whole 2 ms.
	DefaultBatchWait       = 0
	DefaultShutdownTimeout = 30 * time.Second
)

// TruncatedHeader carries the number of inputs cut at max_seq_length.
const TruncatedHeader = "X-Embtune-Truncated"

// Config tunes the server; zero values take the defaults above.
type Config struct {
	// Addr is where ListenAndServe listens; Run takes its own listener.
	Addr string
	// ModelName is reported by /v1/embeddings; empty echoes the request's model.
	ModelName string
	// MaxPayloadBytes bounds a request body.
	MaxPayloadBytes int64
	// MaxInputs bounds the texts of one request.
	MaxInputs int
	// MaxLines bounds the lines of one JSON Lines request
	// (--max-client-batch-size, as TEI names its inputs-per-request cap).
	MaxLines int
	// MaxBatchTokens bounds one forward batch as rows × longest row, padding
	// included; a single input longer than it still runs alone.
	MaxBatchTokens int
	// MaxBatchSize bounds the rows of one forward batch.
	MaxBatchSize int
	// MaxQueue bounds the inputs admitted and not yet embedded; a request
	// that would pass it gets 429. A request into an empty queue is always
	// admitted, so MaxQueue below MaxInputs cannot lock big requests out.
	MaxQueue int
	// BatchWait is how long the oldest queued input may wait for a batch to
	// fill; zero (DefaultBatchWait) or negative means no wait.
	BatchWait time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown;
	// connections still open after it are closed.
	ShutdownTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Index, when set, is searched by POST /search. It must have been built
	// with the served model (corpus.Index.CheckModel).
	Index *corpus.Index
	// Store, when set, is searched by POST /search instead of Index: a
	// pgvector store (pgstore.Searcher) or any other corpus.Searcher
	// built with the served model.
	Store corpus.Searcher
	// TruncateDim, when > 0, cuts every embedding to its first TruncateDim
	// dimensions and re-normalises it (sentence-transformers' truncate_dim,
	// for Matryoshka models). A model with fewer dimensions fails to load.
	TruncateDim int
	// ExitOnLoadFailure makes a model that fails to load stop Run with the
	// load error, as TEI exits. Without it the server stays up and /ping
	// answers 503 with the reason: what a SageMaker container must do.
	ExitOnLoadFailure bool
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if c.MaxInputs <= 0 {
		c.MaxInputs = DefaultMaxInputs
	}
	if c.MaxLines <= 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = DefaultMaxBatchTokens
	}
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.BatchWait == 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves one model. Create it with New and start it with Run.
type Server struct {
	cfg     Config
	load    func(context.Context) (*minilm.Model, error)
	log     *slog.Logger
	metrics *metrics
	batcher *batcher
	core    *embedder
	handler http.Handler
	// release frees the model after shutdown; tests sharing one model swap it.
	release func(*minilm.Model)

	started atomic.Bool
}

// New prepares a server; load runs in the background once Run starts, so
// /ping answers (503) while the model loads.
func New(cfg Config, load func(context.Context) (*minilm.Model, error)) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		load:    load,
		log:     cfg.Logger,
		metrics: newMetrics(),
		release: (*minilm.Model).Close,
	}
	s.batcher = newBatcher(cfg, s.metrics, s.encodeIDs)
	s.core = &embedder{batcher: s.batcher, metrics: s.metrics, log: s.log, truncateDim: cfg.TruncateDim, maxQueue: cfg.MaxQueue}
	s.handler = s.routes()
	return s
}

// LoadErr is why the model failed to load, or nil (loaded or still loading).
func (s *Server) LoadErr() error { return s.core.LoadErr() }

// Ready reports whether the model is loaded.
func (s *Server) Ready() bool { return s.core.model.Load() != nil }

// ListenAndServe listens on Config.Addr and calls Run.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Run(ctx, ln)
}

// Run serves on ln until ctx ends, then stops accepting, lets in-flight
// requests finish (up to ShutdownTimeout) and closes the model. A model that
// fails to load does not stop Run unless Config.ExitOnLoadFailure: /ping
// reports the failure instead, so a container is not restarted in a loop.
// Run returns nil after a shutdown caused by ctx, else the error that
// stopped serving.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if !s.started.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("serve: Run called twice")
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loadDone := make(chan struct{})
	loadFailed := make(chan error, 1)
	go func() {
		defer close(loadDone)
		if err := s.loadModel(loadCtx); err != nil && s.cfg.ExitOnLoadFailure && loadCtx.Err() == nil {
			loadFailed <- err
		}
	}()
	batchDone := make(chan struct{})
	go func() {
		defer close(batchDone)
		s.batcher.run()
	}()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Longer than the idle timeouts of the proxies in front (SageMaker,
		// load balancers), so they never reuse a connection we just closed.
		IdleTimeout: 5 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("serving", "addr", ln.Addr().String())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down: finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout)
		<-s.shutdown(srv)
		<-serveErr // http.ErrServerClosed
	case err = <-serveErr:
		<-s.shutdown(srv)
	case loadErr := <-loadFailed:
		err = fmt.Errorf("model failed to load: %w", loadErr)
		<-s.shutdown(srv)
		<-serveErr
	}
	cancelLoad()
	// The batcher outlives the HTTP server so that drained requests get
	// their vectors; the model outlives the batcher.
	s.batcher.stop()
	<-batchDone
	<-loadDone
	if m := s.core.model.Swap(nil); m != nil {
		s.metrics.loaded.Store(false)
		s.release(m)
	}
	s.log.Info("stopped")
	return err
}

func (s *Server) shutdown(srv *http.Server) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown timed out; closing connections", "err", err)
			srv.Close()
		}
	}()
	return done
}

func (s *Server) loadModel(ctx context.Context) error {
	start := time.Now()
	m, err := s.safeLoad(ctx)
	if err != nil {
		s.core.setLoadErr(err)
		if s.cfg.ExitOnLoadFailure {
			s.log.Error("model failed to load; stopping", "err", err)
		} else {
			s.log.Error("model failed to load; /ping answers 503", "err", err)
		}
		return err
	}
	s.core.model.Store(m)
	s.metrics.loaded.Store(true)
	s.log.Info("model loaded", "dim", m.Dim(), "max_seq_length", m.MaxSeqLength,
		"seconds", fmt.Sprintf("%.2f", time.Since(start).Seconds()))
	return nil
}

// safeLoad turns a panic or a nil model into an error, so /ping can say why.
func (s *Server) safeLoad(ctx context.Context) (m *minilm.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("model loader panicked: %v", r)
		}
	}()
	if s.load == nil {
		return nil, errors.New("no model loader configured")
	}
	m, err = s.load(ctx)
	if err == nil && m == nil {
		err = errors.New("model loader returned no model")
	}
	if err == nil && s.cfg.TruncateDim > m.Dim() {
		err = fmt.Errorf("truncate dim %d is larger than the model's embedding dimension %d", s.cfg.TruncateDim, m.Dim())
		s.release(m)
		m = nil
	}
	return m, err
}

func (s *Server) encodeIDs(ctx context.Context, seqs [][]int64) ([][]float32, error) {
	m := s.core.model.Load()
	if m == nil {
		return nil, errShuttingDown
	}
	return m.EncodeIDs(ctx, seqs)
}
