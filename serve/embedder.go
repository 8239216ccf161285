package serve

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

// embedder is the serving core, as TEI's core/ (infer.rs, tokenization.rs,
// queue.rs): it owns the loaded model, the prompt and truncation policy,
// tokenisation, the batcher, normalisation and --truncate-dim, and fails
// with *Error only. Routes decode a request into an embedInput and encode
// the embeddings it returns; they never touch the model or the batcher.
type embedder struct {
	batcher     *batcher
	metrics     *metrics
	log         *slog.Logger
	truncateDim int // Config.TruncateDim
	maxQueue    int // Config.MaxQueue, for the 429 message

	model   atomic.Pointer[minilm.Model]
	mu      sync.Mutex
	loadErr error
}

// embedInput is one request's share of work, as a route decoded it.
type embedInput struct {
	// Route labels the metrics and logs.
	Route string
	Texts []string
	// PromptName is TEI's prompt_name: a prompt of the folder, by name.
	// Nil takes Role's prompt (encode() or encode_query()).
	PromptName *string
	Role       hf.PromptRole
	// Truncate false makes an input over max_seq_length a KindTooLarge
	// error instead of cutting it.
	Truncate bool
	// Side is the end a cut input loses: TEI's truncation_direction
	// (the zero value keeps the start, as sentence-transformers).
	Side hf.Truncation
	// Normalize L2-normalises the vectors (and the --truncate-dim cut).
	Normalize bool
	// Dimensions > 0 cuts each vector further to its first Dimensions,
	// re-normalised (OpenAI's dimensions); the route checks its range.
	Dimensions int
}

// embeddings are one vector per input, in input order, with the tokens
// embedded ([CLS] and [SEP] included) and the inputs cut at
// max_seq_length.
type embeddings struct {
	Vectors   [][]float32
	Tokens    int
	Truncated int
}

// Model is the loaded model, or why there is none: KindNotReady while it
// loads, KindLoadFailed after a failure.
func (e *embedder) Model() (*minilm.Model, error) {
	if m := e.model.Load(); m != nil {
		return m, nil
	}
	if err := e.LoadErr(); err != nil {
		return nil, errorf(KindLoadFailed, "model failed to load: %w", err)
	}
	return nil, errorf(KindNotReady, "model is still loading; retry shortly")
}

// LoadErr is why the model failed to load, or nil.
func (e *embedder) LoadErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loadErr
}

func (e *embedder) setLoadErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loadErr = err
}

// Dim is the dimension of the vectors served: --truncate-dim, or the
// model's (0 before the model loads).
func (e *embedder) Dim() int {
	if m := e.model.Load(); m != nil {
		return e.servedDim(m)
	}
	return 0
}

func (e *embedder) servedDim(m *minilm.Model) int {
	if d := e.truncateDim; d > 0 && d < m.Dim() {
		return d
	}
	return m.Dim()
}

// Embed tokenizes in the caller's goroutine, so tokenizing runs in
// parallel across requests, queues the ids for the batcher and finishes
// the vectors it returns.
func (e *embedder) Embed(ctx context.Context, in embedInput) (embeddings, error) {
	m, err := e.Model()
	if err != nil {
		return embeddings{}, err
	}
	prompt, err := resolvePrompt(m, in.PromptName, in.Role)
	if err != nil {
		return embeddings{}, err
	}
	start := time.Now()
	seqs, out, err := prepare(m, in.Texts, prompt, in.Truncate, in.Side)
	if err != nil {
		return out, err
	}
	e.metrics.tokenizing.Observe(time.Since(start).Seconds())
	vecs, err := e.batcher.submit(ctx, seqs)
	if err != nil {
		return out, e.batchError(ctx, in.Route, err)
	}
	// The all-MiniLM folders end in a Normalize module, which the encoder
	// already applies; other folders get it here when asked.
	if in.Normalize && !m.Folder.Normalize {
		for _, v := range vecs {
			vecmath.Normalize(v, v)
		}
	}
	vecs = truncateVectors(vecs, e.truncateDim, in.Normalize)
	if in.Dimensions > 0 && in.Dimensions < e.servedDim(m) {
		// As OpenAI's text-embedding-3: the first dimensions, re-normalised.
		vecs = truncateVectors(vecs, in.Dimensions, true)
	}
	out.Vectors = vecs
	e.metrics.observeInputs(in.Route, len(in.Texts), out.Truncated, out.Tokens)
	return out, nil
}

// resolvePrompt is the prompt prepended to every text: a prompt_name
// (TEI's field) among the folder's prompts, else the role's prompt, as
// encode() without prompt_name. A name the folder does not define is
// TEI's Validation error. The prompt's tokens count towards
// max_seq_length, as in sentence-transformers.
func resolvePrompt(m *minilm.Model, name *string, role hf.PromptRole) (string, error) {
	if name == nil {
		return m.Prompt(role), nil
	}
	if *name == "" {
		return "", errorf(KindValidation, "prompt_name is empty; omit it for the default prompt")
	}
	p, err := m.PromptByName(*name, hf.RoleDefault)
	if err != nil {
		return "", errorf(KindValidation, "prompt_name %q is not defined; this model's prompts are %s",
			*name, m.Folder.PromptNames())
	}
	return p, nil
}

// prepare tokenizes texts as Encode does; an input over max_seq_length is
// cut on side when truncate is set, else a KindTooLarge error that says by
// how much.
func prepare(m *minilm.Model, texts []string, prompt string, truncate bool, side hf.Truncation) ([][]int64, embeddings, error) {
	seqs := make([][]int64, len(texts))
	var out embeddings
	for i, text := range texts {
		text = prompt + text
		ids, cut, err := m.Text().PrepareTruncating(text, side)
		if err != nil {
			if errors.Is(err, hf.ErrInvalidUTF8) {
				return nil, out, badRequest("input %d: %w", i, err)
			}
			return nil, out, errorf(KindInternal, "tokenizing input %d: %w", i, err)
		}
		if cut {
			if !truncate {
				n, _ := m.Text().Length(text) // the prompt included
				return nil, out, errorf(KindTooLarge,
					"input %d has %d tokens, more than max_seq_length %d; shorten it or send \"truncate\": true", i, n, m.MaxSeqLength)
			}
			out.Truncated++
		}
		out.Tokens += len(ids)
		seqs[i] = ids
	}
	return seqs, out, nil
}

// batchError types what the batcher failed with. A full queue wins over a
// cancelled client, as the queue refused the request before it waited.
func (e *embedder) batchError(ctx context.Context, route string, err error) error {
	switch {
	case errors.Is(err, errQueueFull):
		return errorf(KindOverloaded, "server is busy: more than %d inputs queued; retry later", e.maxQueue)
	case errors.Is(err, errShuttingDown):
		return errorf(KindShuttingDown, "server is shutting down")
	case ctx.Err() != nil:
		return errorf(KindCancelled, "request cancelled")
	default:
		e.log.Error("inference failed", "route", route, "err", err)
		return errorf(KindInternal, "inference failed: %w", err)
	}
}
