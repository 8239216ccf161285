package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/sagemaker"
	"github.com/embtune/embtune/synth"
	"github.com/embtune/embtune/vecmath"
)

// runDataCommand dispatches `embtune data`: generate here, faq in runData.
func runDataCommand(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "generate" {
		return runGenerate(ctx, args[1:], stdout)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		dataUsage(usageOutput)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "faq" {
		return usageError("embtune data faq FILE > pairs.jsonl, or embtune data generate --docs PATH… --output pairs.jsonl (run either with --help)")
	}
	return runData(ctx, args, stdin, stdout)
}

// dataUsage lists `embtune data`'s subcommands.
func dataUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: embtune data SUBCOMMAND [flags]")
	fmt.Fprintf(w, "\n%s\n\n", summaryOf("data"))
	for _, sub := range []string{"faq", "generate"} {
		fmt.Fprintf(w, "  %-10s %s\n", sub, summaryOf("data "+sub))
	}
	fmt.Fprintln(w, "Run 'embtune data SUBCOMMAND --help' for its flags.")
}

// pathList collects a repeatable flag.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ",") }
func (p *pathList) Set(v string) error {
	*p = append(*p, v)
	return nil
}

func runGenerate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("data generate")
	var docPaths pathList
	fs.Var(&docPaths, "docs", "documents: a file or folder of .txt, .md, .rst or .jsonl ({\"text\",\"id\",\"title\"}), optionally gzipped (repeatable; more may follow the flags)")
	output := fs.String("output", "", "pairs to write: JSONL with anchor, positive, chunk and model")
	statePath := fs.String("state", "", "append-only state and audit log of every request and answer (default: OUTPUT.state.jsonl); a run given the same file continues where it stopped")
	var mf modelFlags
	mf.register(fs)
	chunkTokens := fs.Int("chunk-size", 0, "most word pieces in a chunk, as embtune index (0: the model's max_seq_length less [CLS] and [SEP])")
	overlap := fs.Int("chunk-overlap", -1, "word pieces of whole sentences repeated between chunks (-1: an eighth of the chunk size)")
	backend := fs.String("llm-backend", "openai", "openai (any OpenAI-compatible /v1/chat/completions server) or bedrock (Amazon Bedrock's Converse API)")
	llmURL := fs.String("llm-url", "", "openai backend: the server's URL, e.g. http://127.0.0.1:8080/v1 (default: OPENAI_BASE_URL); its key, if any, is read from OPENAI_API_KEY only")
	llmModel := fs.String("llm-model", "", "model name (openai) or model id (bedrock)")
	questions := fs.Int("questions-per-chunk", 3, "questions asked for each chunk")
	promptFile := fs.String("prompt", "", "user-message template with {chunk} and {n} (default: questions the chunk answers, in the chunk's language)")
	concurrency := fs.Int("concurrency", 4, "most requests in flight at once")
	attempts := fs.Int("max-attempts", 5, "tries per chunk, for server errors and malformed answers")
	maxChunks := fs.Int("max-chunks", 0, "ask at most this many chunks in this run (0: all that are left)")
	maxTokens := fs.Int("max-tokens", 512, "most tokens in one answer")
	temperature := fs.Float64("temperature", 0.7, "sampling temperature")
	timeout := fs.Duration("request-timeout", 5*time.Minute, "one request's time limit")
	topK := fs.Int("filter-top-k", 5, "keep a question only if the base model ranks its own chunk in the top k of all chunks (0: no round-trip filter)")
	dedup := fs.Float64("dedup-threshold", 0.95, "drop a question whose cosine similarity to an earlier kept one is at least this (above 1: exact duplicates only)")
	batch := fs.Int("batch-size", 32, "texts per forward pass of the filter's embedding")
	var aws smAWSFlags
	aws.register(fs)
	if err := parseFlagsEnv(fs, args, os.LookupEnv); err != nil {
		return err
	}
	docPaths = append(docPaths, fs.Args()...)
	switch {
	case len(docPaths) == 0:
		return usageError("give the documents with --docs PATH")
	case *output == "":
		return usageError("give --output FILE")
	case *questions < 1:
		return usageError("--questions-per-chunk must be at least 1")
	case *topK < 0:
		return usageError("--filter-top-k must not be negative")
	}
	if *statePath == "" {
		*statePath = *output + ".state.jsonl"
	}
	prompt, err := synth.LoadPrompt(*promptFile)
	if err != nil {
		return usageError("%v", err)
	}
	llm, err := newLLM(ctx, *backend, *llmURL, *llmModel, *maxTokens, *temperature, *timeout, aws)
	if err != nil {
		return err
	}
	if _, err := atomicfile.RemoveStale(*output); err != nil {
		return err
	}

	docs, skipped, err := corpus.ReadDocuments(docPaths)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fmt.Errorf("no documents with text in %s (%d empty files skipped)", strings.Join(docPaths, ", "), skipped)
	}
	chunks, err := generateChunks(mf, docs, *chunkTokens, *overlap)
	if err != nil {
		return err
	}
	st, err := synth.OpenState(*statePath)
	if err != nil {
		return err
	}
	defer st.Close()
	slog.Info("generating questions", "documents", len(docs), "skipped_empty", skipped, "chunks", len(chunks),
		"backend", *backend, "llm_model", llm.Model(), "state", *statePath)
	stats, genErr := synth.Generate(ctx, llm, chunks, st, synth.Options{
		Questions: *questions, Prompt: prompt, Concurrency: *concurrency, MaxAttempts: *attempts,
		MaxChunks: *maxChunks, Backend: *backend, Progress: os.Stderr, ProgressLines: !isTerminal(os.Stderr),
	})
	logStats(stats)
	if genErr != nil {
		return fmt.Errorf("%w (the chunks answered so far are kept in %s: run the same command again to continue)", genErr, *statePath)
	}

	pairs := synth.Pairs(chunks, st)
	fst := synth.FilterStats{Generated: len(pairs)}
	if len(pairs) > 0 {
		if pairs, err = filterPairs(ctx, mf, chunks, pairs, *topK, float32(*dedup), *batch, &fst); err != nil {
			return err
		}
	}
	fst.Kept = len(pairs)
	if err := atomicfile.Write(*output, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, p := range pairs {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("writing %s: %w", *output, err)
	}
	secs := stats.Elapsed.Seconds()
	_, err = fmt.Fprintf(stdout, "chunks %d (asked now %d, from earlier runs %d, left %d), skipped %d, malformed answers %d, retries %d\n"+
		"questions generated %d, removed by round trip (top %d) %d, removed as near duplicates %d, kept %d -> %s\n"+
		"tokens in %d out %d, %.1f s, %.2f questions/s, %.1f output tokens/s\n",
		stats.Chunks, stats.Asked, stats.Resumed, stats.Left, stats.Skipped, stats.Malformed, stats.Retries,
		fst.Generated, *topK, fst.RoundTrip, fst.Duplicates, fst.Kept, *output,
		stats.InputTokens, stats.OutputTokens, secs, float64(stats.Done**questions)/max(secs, 1e-9), float64(stats.OutputTokens)/max(secs, 1e-9))
	return err
}

func logStats(s synth.Stats) {
	slog.Info("generation", "chunks", s.Chunks, "asked", s.Asked, "done", s.Done, "skipped", s.Skipped,
		"resumed", s.Resumed, "left", s.Left, "requests", s.Requests, "retries", s.Retries, "malformed", s.Malformed,
		"input_tokens", s.InputTokens, "output_tokens", s.OutputTokens, "seconds", fmt.Sprintf("%.1f", s.Elapsed.Seconds()))
}

// newLLM builds the chosen backend. The OpenAI key comes from OPENAI_API_KEY
// only and AWS credentials from the SDK's default chain only, so neither is
// in a command line or a log.
func newLLM(ctx context.Context, backend, url, model string, maxTokens int, temperature float64, timeout time.Duration, a smAWSFlags) (synth.LLM, error) {
	switch backend {
	case "openai":
		if url == "" {
			url = os.Getenv("OPENAI_BASE_URL")
		}
		if url == "" {
			return nil, usageError("the openai backend needs --llm-url (or OPENAI_BASE_URL)")
		}
		if model == "" {
			model = "default"
		}
		c := &synth.OpenAI{BaseURL: url, ModelName: model, APIKey: os.Getenv("OPENAI_API_KEY"),
			Temperature: temperature, MaxTokens: maxTokens, HTTP: httpClientWithTimeout(timeout)}
		return c, nil
	case "bedrock":
		if model == "" {
			return nil, usageError("the bedrock backend needs --llm-model (a Bedrock model id or inference profile)")
		}
		// The SDK's own retries are off: Generate retries with backoff and
		// logs every attempt to the state file.
		cfg, err := sagemaker.LoadAWSConfig(ctx, sagemaker.AWSOptions{Region: a.region, Profile: a.profile, MaxAttempts: 1,
			HTTPClient: httpClientWithTimeout(timeout)})
		if err != nil {
			return nil, err
		}
		b := synth.NewBedrock(cfg, a.endpoint, model)
		b.MaxTokens, b.Temperature = int32(maxTokens), float32(temperature)
		return b, nil
	}
	return nil, usageError("--llm-backend: want openai or bedrock, got %q", backend)
}

// generateChunks cuts docs as embtune index does with the same flags.
func generateChunks(mf modelFlags, docs []corpus.Document, chunkTokens, overlap int) ([]synth.Chunk, error) {
	folder, text, err := hf.Open(mf.dir, mf.maxSeqLength)
	if err != nil {
		return nil, err
	}
	model := corpus.Model{Folder: folder, Text: text}
	if p, err := mf.documentPrompt(); err != nil {
		return nil, err
	} else if p != "" {
		model.DocumentPrompt = p
		if model.PromptTokens, err = text.WordPieces(p); err != nil {
			return nil, fmt.Errorf("document prompt: %w", err)
		}
	}
	c := corpus.DefaultChunking(text)
	if model.PromptTokens > 0 && model.PromptTokens < c.MaxTokens {
		c = corpus.Chunking{MaxTokens: c.MaxTokens - model.PromptTokens, Overlap: (c.MaxTokens - model.PromptTokens) / 8}
	}
	if chunkTokens > 0 {
		c.MaxTokens = chunkTokens
		c.Overlap = c.MaxTokens / 8
	}
	if overlap >= 0 {
		c.Overlap = overlap
	}
	if err := c.Validate(); err != nil {
		return nil, usageError("%v", err)
	}
	_, cs, _, err := corpus.Split(model, docs, c)
	if err != nil {
		return nil, err
	}
	out := make([]synth.Chunk, len(cs))
	for i, ch := range cs {
		out[i] = synth.Chunk{ID: ch.ID, Text: ch.Text}
	}
	return out, nil
}

// filterPairs embeds the questions (as queries) and chunks (as documents)
// with the base model, then applies the round-trip and near-duplicate
// filters.
func filterPairs(ctx context.Context, mf modelFlags, chunks []synth.Chunk, pairs []synth.Pair, topK int, dedup float32, batch int, fst *synth.FilterStats) ([]synth.Pair, error) {
	m, err := mf.load(ctx)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	texts := make([]string, len(pairs))
	for i, p := range pairs {
		texts[i] = p.Anchor
	}
	qv, err := embedding.Queries(ctx, m, texts, batch)
	if err != nil {
		return nil, fmt.Errorf("embedding the questions: %w", err)
	}
	for i := range qv {
		qv[i] = vecmath.Normalized(qv[i])
	}
	if topK > 0 {
		ctexts := make([]string, len(chunks))
		for i, c := range chunks {
			ctexts[i] = c.Text
		}
		cv, err := corpus.Embed(ctx, m, ctexts, batch, nil)
		if err != nil {
			return nil, fmt.Errorf("embedding the chunks: %w", err)
		}
		idx := synth.ChunkIndex(chunks)
		own := make([]int, len(pairs))
		for i, p := range pairs {
			own[i] = idx[p.Chunk]
		}
		keep, err := synth.RoundTrip(qv, own, cv, topK)
		if err != nil {
			return nil, err
		}
		n := len(pairs)
		pairs, qv, texts = synth.Select(pairs, keep), selectVecs(qv, keep), selectStrings(texts, keep)
		fst.RoundTrip = n - len(pairs)
	}
	keep, err := synth.NearDuplicates(texts, qv, dedup)
	if err != nil {
		return nil, err
	}
	n := len(pairs)
	pairs = synth.Select(pairs, keep)
	fst.Duplicates = n - len(pairs)
	return pairs, nil
}

func selectVecs(v [][]float32, keep []bool) [][]float32 {
	var out [][]float32
	for i, k := range keep {
		if k {
			out = append(out, v[i])
		}
	}
	return out
}

func selectStrings(v []string, keep []bool) []string {
	var out []string
	for i, k := range keep {
		if k {
			out = append(out, v[i])
		}
	}
	return out
}

func httpClientWithTimeout(d time.Duration) *http.Client {
	return &http.Client{Timeout: d}
}

// isTerminal reports whether f is a character device (a terminal), where a
// progress bar redrawn with \r reads well; a log gets a line at each
// twentieth instead.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
