package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/pgstore"
	"github.com/embtune/embtune/sagemaker"
)

// storeFlags choose a PostgreSQL store instead of an index file.
type storeFlags struct {
	url      string
	table    string
	exact    bool
	efSearch int
	// appendOnly keeps chunks the run's corpus lacks (--append).
	appendOnly bool
}

func (s *storeFlags) register(fs *flag.FlagSet, search bool) {
	fs.StringVar(&s.url, "store", os.Getenv("EMBTUNE_STORE"), "postgres://… database with pgvector to use instead of an index file (env EMBTUNE_STORE)")
	table := os.Getenv("EMBTUNE_STORE_TABLE")
	if table == "" {
		table = pgstore.DefaultTable
	}
	fs.StringVar(&s.table, "table", table, "the store's table in that database (env EMBTUNE_STORE_TABLE)")
	if !search {
		fs.BoolVar(&s.appendOnly, "append", false, "add and update chunks only: keep those of documents the corpus no longer has (without it the store or index file is made equal to the corpus)")
	}
	if search {
		fs.BoolVar(&s.exact, "exact", false, "with --store: rank every chunk (exact, as the index file) instead of walking the HNSW index")
		fs.IntVar(&s.efSearch, "ef-search", pgstore.DefaultEfSearch, "with --store: HNSW candidate list per query (hnsw.ef_search, raised to top-k)")
	}
}

func (s *storeFlags) open(ctx context.Context) (*pgstore.Store, error) {
	if !pgstore.IsURL(s.url) {
		return nil, usageError("--store takes a postgres:// or postgresql:// URL, got %q", s.url)
	}
	return pgstore.Open(ctx, s.url, pgstore.Options{Table: s.table, Exact: s.exact, EfSearch: s.efSearch})
}

// begin opens the store and starts writing the index info describes;
// done closes both.
func (s *storeFlags) begin(ctx context.Context, info corpus.Info) (*pgstore.Store, *pgstore.Writer, func(), error) {
	st, err := s.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	w, err := st.Begin(ctx, info)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, w, func() { w.Close(); st.Close() }, nil
}

// openSearcher opens the index file or the store given, checked against the
// model folder of mf and the document prompt mf embeds documents with.
// close releases it.
func openSearcher(ctx context.Context, indexPath string, sf storeFlags, mf *modelFlags) (corpus.Searcher, corpus.Info, func(), error) {
	if (indexPath == "") == (sf.url == "") {
		return nil, corpus.Info{}, nil, usageError("give --index FILE or --store postgres://…, not both")
	}
	if indexPath != "" {
		x, err := corpus.Load(indexPath)
		if err != nil {
			return nil, corpus.Info{}, nil, err
		}
		if err := x.CheckModel(mf.dir); err != nil {
			return nil, corpus.Info{}, nil, err
		}
		if err := checkDocumentPrompt(x.Info, mf); err != nil {
			return nil, corpus.Info{}, nil, err
		}
		return x, x.Info, func() {}, nil
	}
	fp, err := corpus.ModelFingerprint(mf.dir)
	if err != nil {
		return nil, corpus.Info{}, nil, err
	}
	st, err := sf.open(ctx)
	if err != nil {
		return nil, corpus.Info{}, nil, err
	}
	q, err := st.Searcher(ctx, fp)
	if err != nil {
		st.Close()
		return nil, corpus.Info{}, nil, err
	}
	if err := checkDocumentPrompt(q.Info(), mf); err != nil {
		st.Close()
		return nil, corpus.Info{}, nil, fmt.Errorf("store %s: %w", sf.table, err)
	}
	return q, q.Info(), st.Close, nil
}

// checkDocumentPrompt refuses an index or store whose chunks were embedded
// with another document prompt than the one mf embeds documents with.
func checkDocumentPrompt(info corpus.Info, mf *modelFlags) error {
	prompt, err := mf.documentPrompt()
	if err != nil {
		return err
	}
	return corpus.CheckDocumentPrompt(info, prompt)
}

// indexToStore upserts chunks into a PostgreSQL store, embedding only those
// the store lacks (a re-run after an interruption resumes), a group at a
// time so each committed group survives an interruption.
func indexToStore(ctx context.Context, sf storeFlags, enc embedding.Encoder, info corpus.Info, chunks []corpus.Chunk, batch int, stdout io.Writer) error {
	start := time.Now()
	st, w, done, err := sf.begin(ctx, info)
	if err != nil {
		return err
	}
	defer done()
	missing, err := w.Missing(ctx, chunks)
	if err != nil {
		return err
	}
	slog.Info("store", "table", st.Table(), "chunks", len(chunks), "already_stored", len(chunks)-len(missing), "to_embed", len(missing))
	group := max(1, batch) * 16
	for from := 0; from < len(missing); from += group {
		part := missing[from:min(from+group, len(missing))]
		texts := make([]string, len(part))
		for i, idx := range part {
			texts[i] = chunks[idx].Text
		}
		vecs, err := corpus.Embed(ctx, enc, texts, batch, nil)
		if err != nil {
			return err
		}
		rows := make([]pgstore.Row, len(part))
		for i, idx := range part {
			rows[i] = pgstore.Row{Ord: idx, Chunk: chunks[idx], Vector: vecs[i]}
		}
		if err := w.Put(ctx, rows); err != nil {
			return err
		}
		done := from + len(part)
		slog.Info("stored", "chunks", done, "of", len(missing), "chunks_per_sec", fmt.Sprintf("%.1f", float64(done)/time.Since(start).Seconds()))
	}
	return finishStore(ctx, sf, w, st, chunks, len(missing), start, stdout)
}

// finishStore deletes what the corpus no longer has (unless --append),
// then finishes the writer and reports.
func finishStore(ctx context.Context, sf storeFlags, w *pgstore.Writer, st *pgstore.Store, chunks []corpus.Chunk, embedded int, start time.Time, stdout io.Writer) error {
	var deleted int64
	if !sf.appendOnly {
		keep := make([]string, len(chunks))
		for i, c := range chunks {
			keep[i] = c.ID
		}
		var err error
		if deleted, err = w.Prune(ctx, keep); err != nil {
			return err
		}
	}
	ready, err := w.Finish(ctx)
	if err != nil {
		return err
	}
	state := "ready"
	if !ready {
		state = "written; another writer is still running and will mark the store ready"
	}
	total := len(chunks)
	_, err = fmt.Fprintf(stdout, "stored %d chunks (%d embedded, %d already there) in table %s in %.1fs: %s",
		total, embedded, total-embedded, st.Table(), time.Since(start).Seconds(), state)
	if err == nil && deleted > 0 {
		_, err = fmt.Fprintf(stdout, "; deleted %d chunks the corpus no longer has", deleted)
	}
	if err == nil {
		_, err = fmt.Fprintln(stdout)
	}
	return err
}

// indexFromEmbeddings builds an index file or a store from Batch Transform
// output (local folders or s3:// prefixes), without embedding anything.
func indexFromEmbeddings(ctx context.Context, out, in, modelDir, output string, truncateDim int, sf storeFlags, af smAWSFlags, stdout io.Writer) error {
	if in == "" {
		return usageError("--from-embeddings needs --chunks: the transform job's input (folder or s3:// prefix)")
	}
	if (output == "") == (sf.url == "") {
		return usageError("give --output FILE or --store postgres://…")
	}
	fp, err := corpus.ModelFingerprint(modelDir)
	if err != nil {
		return err
	}
	start := time.Now()
	local := func(src, what string) (string, func(), error) {
		if !strings.HasPrefix(src, "s3://") {
			return src, func() {}, nil
		}
		c, err := af.clients(ctx)
		if err != nil {
			return "", nil, err
		}
		dir, err := os.MkdirTemp("", "embtune-"+what+"-")
		if err != nil {
			return "", nil, err
		}
		n, err := sagemaker.Download(ctx, c.S3, src, dir)
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		slog.Info("downloaded", "from", src, "objects", n)
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	inDir, cleanIn, err := local(in, "chunks")
	if err != nil {
		return err
	}
	defer cleanIn()
	outDir, cleanOut, err := local(out, "embeddings")
	if err != nil {
		return err
	}
	defer cleanOut()
	chunks, vecs, err := corpus.ReadTransformOutput(inDir, outDir)
	if err != nil {
		return err
	}
	if vecs, err = embedding.TruncateVectors(vecs, truncateDim); err != nil {
		return usageError("--truncate-dim: %v", err)
	}
	docs := map[string]bool{}
	for _, c := range chunks {
		docs[c.Doc] = true
	}
	info := corpus.Info{Model: modelDir, ModelFingerprint: fp, Dim: len(vecs[0]), Documents: len(docs)}
	if output != "" {
		x, err := corpus.FromVectors(info, chunks, vecs)
		if err != nil {
			return err
		}
		if sf.appendOnly {
			if x, err = appendToIndexFile(output, x); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
			return err
		}
		if err := x.Save(output); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "indexed %d chunks from %s in %.1fs: %s\n", len(chunks), out, time.Since(start).Seconds(), output)
		return err
	}
	st, w, done, err := sf.begin(ctx, info)
	if err != nil {
		return err
	}
	defer done()
	rows := make([]pgstore.Row, len(chunks))
	for i := range chunks {
		rows[i] = pgstore.Row{Ord: i, Chunk: chunks[i], Vector: vecs[i]}
	}
	if err := w.Put(ctx, rows); err != nil {
		return err
	}
	return finishStore(ctx, sf, w, st, chunks, 0, start, stdout)
}

// smBatchEmbed is `embtune sagemaker batch-embed`: a Batch Transform job
// that embeds JSON Lines files in S3 (embtune index --write-chunks) with a
// model served by embtune's container.
func smBatchEmbed(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("sagemaker batch-embed")
	var af smAWSFlags
	af.register(fs)
	var spec sagemaker.TransformJobSpec
	fs.StringVar(&spec.Name, "name", "", "transform job name")
	fs.StringVar(&spec.ModelName, "model-name", "", "SageMaker model (embtune sagemaker deploy) whose container embeds")
	fs.StringVar(&spec.InputS3, "input", "", "s3:// prefix of JSON Lines files, one text per line (a string or {\"text\": …})")
	fs.StringVar(&spec.OutputS3, "output", "", "s3:// prefix for the output: FILE.out per input FILE, one embedding per line")
	fs.StringVar(&spec.InstanceType, "instance-type", "ml.m5.xlarge", "instance type")
	fs.IntVar(&spec.InstanceCount, "instance-count", 1, "instances; input files are shared among them")
	fs.IntVar(&spec.MaxPayloadMB, "max-payload-mb", 0, "request size, at most 6 (0: the container's /execution-parameters)")
	fs.IntVar(&spec.MaxConcurrent, "max-concurrent-transforms", 0, "requests in flight per instance (0: the container's /execution-parameters)")
	fs.DurationVar(&spec.InvocationTimeout, "invocation-timeout", 0, "per-request timeout (0: SageMaker's 600s)")
	wait := fs.Bool("wait", false, "wait until the job completes, stops or fails")
	waitTimeout := fs.Duration("wait-timeout", 24*time.Hour, "give up waiting after this long")
	noCheck := fs.Bool("no-check", false, "skip checking that the input exists in S3")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if spec.Name == "" || spec.ModelName == "" || spec.InputS3 == "" || spec.OutputS3 == "" {
		return usageError("--name, --model-name, --input and --output are required")
	}
	if spec.InstanceCount < 1 {
		return usageError("--instance-count must be at least 1")
	}
	if spec.MaxPayloadMB < 0 || spec.MaxPayloadMB > sagemaker.MaxTransformPayloadMB {
		return usageError("--max-payload-mb %d: the embtune server takes at most %d MB per request (SageMaker's invocation limit)", spec.MaxPayloadMB, sagemaker.MaxTransformPayloadMB)
	}
	c, err := af.clients(ctx)
	if err != nil {
		return err
	}
	if !*noCheck {
		if err := sagemaker.CheckS3Inputs(ctx, c.S3, spec.InputS3); err != nil {
			return fmt.Errorf("%w (--no-check skips this check)", err)
		}
	}
	res, err := sagemaker.CreateTransformJob(ctx, c.SageMaker, spec, *wait, *waitTimeout)
	if perr := printJSON(stdout, res); err == nil {
		err = perr
	}
	return err
}
