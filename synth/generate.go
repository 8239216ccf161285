package synth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Chunk is one passage to write questions for.
type Chunk struct {
	ID   string
	Text string
}

// Options configure a run.
type Options struct {
	// Questions per chunk (N).
	Questions int
	Prompt    Prompt
	// Concurrency is the most requests in flight at once (at least 1).
	Concurrency int
	// MaxAttempts bounds the tries of one chunk, for server errors and
	// malformed answers alike (at least 1).
	MaxAttempts int
	// MaxChunks is the most chunks this run asks (0: all that are left).
	MaxChunks int
	// Backoff is the first pause after a retryable failure; it doubles per
	// attempt up to MaxBackoff, with jitter. A server's Retry-After wins.
	Backoff, MaxBackoff time.Duration
	// Backend names the backend in the state file ("openai", "bedrock").
	Backend string
	// Progress, when not nil, gets a one-line progress bar, redrawn with \r,
	// or with ProgressLines, a line at each twentieth of the chunks (for a
	// log file).
	Progress      io.Writer
	ProgressLines bool
}

// Stats counts what a run did; the token counts are the servers' own.
type Stats struct {
	Chunks       int // chunks in the corpus
	Resumed      int // chunks with a final outcome from an earlier run
	Asked        int // chunks asked in this run
	Done         int // chunks that got their questions in this run
	Skipped      int // chunks given up on after MaxAttempts malformed answers
	Malformed    int // malformed answers (each retried)
	Retries      int // retryable server failures (429, 5xx, throttling, connection)
	Requests     int
	InputTokens  int
	OutputTokens int
	Left         int // chunks left for a later run (--max-chunks)
	Elapsed      time.Duration
}

// PromptID identifies the prompt and N a state file was written with.
func PromptID(p Prompt, n int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s\x00%s", n, p.System, p.Template)))
	return hex.EncodeToString(h[:8])
}

// Generate asks llm for questions for each chunk that has no final outcome in
// st, at most o.Concurrency at a time, logging every request and answer to
// st. A retryable failure is retried with backoff; a malformed answer is
// retried and, after MaxAttempts, the chunk is skipped and counted. A server
// that still fails after MaxAttempts stops the run with an error, and a
// later run continues with the chunks that are left.
func Generate(ctx context.Context, llm LLM, chunks []Chunk, st *State, o Options) (Stats, error) {
	start := time.Now()
	s := Stats{Chunks: len(chunks)}
	if len(chunks) == 0 {
		return s, errNoChunks
	}
	if o.Questions < 1 {
		return s, fmt.Errorf("synth: questions per chunk must be at least 1, got %d", o.Questions)
	}
	o.Concurrency = max(1, o.Concurrency)
	o.MaxAttempts = max(1, o.MaxAttempts)
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(o.Backoff, 60*time.Second)
	}
	id := PromptID(o.Prompt, o.Questions)
	for _, r := range st.Runs {
		if r.PromptID != id {
			return s, fmt.Errorf("synth: the state file was written with another prompt or questions per chunk (%s, now %s): use a new state file", r.PromptID, id)
		}
	}
	if err := st.Append(Record{Kind: "run", Model: llm.Model(), Backend: o.Backend, N: o.Questions, PromptID: id}); err != nil {
		return s, err
	}
	var todo []Chunk
	seen := map[string]bool{}
	for _, c := range chunks {
		if seen[c.ID] {
			return s, fmt.Errorf("synth: chunk id %q appears twice", c.ID)
		}
		seen[c.ID] = true
		if _, ok := st.Outcome(c.ID); ok {
			s.Resumed++
			continue
		}
		todo = append(todo, c)
	}
	if o.MaxChunks > 0 && len(todo) > o.MaxChunks {
		s.Left = len(todo) - o.MaxChunks
		todo = todo[:o.MaxChunks]
	}
	s.Asked = len(todo)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu       sync.Mutex
		finished atomic.Int64
		wg       sync.WaitGroup
	)
	jobs := make(chan Chunk)
	bar := newProgress(o.Progress, len(todo), o.ProgressLines)
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				r, err := ask(ctx, llm, c, st, o)
				mu.Lock()
				s.Requests += r.requests
				s.Retries += r.retries
				s.Malformed += r.malformed
				s.InputTokens += r.inTok
				s.OutputTokens += r.outTok
				switch {
				case err != nil:
				case r.skipped:
					s.Skipped++
				default:
					s.Done++
				}
				in, out := s.InputTokens, s.OutputTokens
				mu.Unlock()
				if err != nil {
					cancel(err)
					continue
				}
				bar.update(int(finished.Add(1)), in, out)
			}
		}()
	}
feed:
	for _, c := range todo {
		select {
		case jobs <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	bar.finish()
	s.Elapsed = time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return s, err
	}
	return s, nil
}

type askResult struct {
	requests, retries, malformed int
	inTok, outTok                int
	skipped                      bool
}

// ask gets one chunk's questions, writing every try to the state file.
func ask(ctx context.Context, llm LLM, c Chunk, st *State, o Options) (askResult, error) {
	var res askResult
	req := o.Prompt.Render(c.Text, o.Questions)
	var lastErr error
	for attempt := 1; attempt <= o.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return res, context.Cause(ctx)
		}
		if err := st.Append(Record{Kind: "request", Chunk: c.ID, Attempt: attempt, Model: llm.Model(), System: req.System, User: req.User}); err != nil {
			return res, err
		}
		t0 := time.Now()
		rep, err := llm.Chat(ctx, req)
		res.requests++
		res.inTok += rep.InputTokens
		res.outTok += rep.OutputTokens
		ans := Record{Kind: "answer", Chunk: c.ID, Attempt: attempt, Model: rep.Model, Text: rep.Text,
			InTok: rep.InputTokens, OutTok: rep.OutputTokens, Seconds: time.Since(t0).Seconds()}
		var qs []string
		if err == nil {
			qs, err = ParseQuestions(rep.Text, o.Questions)
		}
		if err != nil {
			ans.Error = err.Error()
		}
		if aerr := st.Append(ans); aerr != nil {
			return res, aerr
		}
		if err == nil {
			model := rep.Model
			if model == "" {
				model = llm.Model()
			}
			return res, st.Append(Record{Kind: "done", Chunk: c.ID, Model: model, Questions: qs, InTok: res.inTok, OutTok: res.outTok})
		}
		if ctx.Err() != nil {
			return res, context.Cause(ctx)
		}
		lastErr = err
		var bad *MalformedError
		switch after, ok := retryable(err); {
		case errors.As(err, &bad):
			res.malformed++
		case ok:
			res.retries++
			if attempt < o.MaxAttempts {
				if err := sleep(ctx, backoff(o, attempt, after)); err != nil {
					return res, err
				}
			}
		default:
			return res, fmt.Errorf("chunk %s: %w", c.ID, err)
		}
	}
	var bad *MalformedError
	if errors.As(lastErr, &bad) {
		res.skipped = true
		return res, st.Append(Record{Kind: "skipped", Chunk: c.ID, Model: llm.Model(), Error: lastErr.Error(), InTok: res.inTok, OutTok: res.outTok})
	}
	return res, fmt.Errorf("chunk %s: giving up after %d attempts: %w", c.ID, o.MaxAttempts, lastErr)
}

// backoff is the pause before attempt+1: the server's Retry-After, or
// Backoff doubled per attempt up to MaxBackoff, with up to 50% jitter.
func backoff(o Options, attempt int, after time.Duration) time.Duration {
	if after > 0 {
		return min(after, o.MaxBackoff)
	}
	d := o.Backoff << min(attempt-1, 20)
	if d <= 0 || d > o.MaxBackoff {
		d = o.MaxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// progress draws "generate [#####.....] 12/80 chunks  0.4 chunks/s  in 1234 out 567 tokens".
type progress struct {
	w     io.Writer
	total int
	lines bool
	start time.Time
	mu    sync.Mutex
}

func newProgress(w io.Writer, total int, lines bool) *progress {
	return &progress{w: w, total: total, lines: lines, start: time.Now()}
}

func (p *progress) update(done, in, out int) {
	if p.w == nil {
		return
	}
	step := max(1, p.total/20)
	if p.lines && done%step != 0 && done != p.total {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	const width = 30
	fill := width
	if p.total > 0 {
		fill = width * done / p.total
	}
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-9)
	start, end := "\r", " "
	if p.lines {
		start, end = "", "\n"
	}
	fmt.Fprintf(p.w, start+"generate [%s%s] %d/%d chunks  %.2f chunks/s  tokens in %d out %d%s",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, p.total, rate, in, out, end)
}

func (p *progress) finish() {
	if p.w != nil && !p.lines {
		fmt.Fprintln(p.w)
	}
}
