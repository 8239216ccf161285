package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/sagemaker"
	"github.com/embtune/embtune/serve"
	"github.com/embtune/embtune/torch"
)

// sagemakerModelDir is where SageMaker unpacks model.tar.gz.
var sagemakerModelDir = sagemaker.Layout{Base: sagemaker.DefaultBase}.ModelDir()

// runServe is `embtune serve`, also the SageMaker inference container's
// `serve` command: HTTP on /ping, /invocations, /embed, /v1/embeddings,
// /search (with --index) and /metrics until ctx ends (SIGTERM), then a graceful shutdown.
func runServe(ctx context.Context, args []string, _ io.Reader, _ io.Writer) error {
	fs := newFlags("serve")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	mf.registerBF16(fs)
	addr := fs.String("addr", "", "listen address (default "+serve.DefaultAddr+"; in a SageMaker container 0.0.0.0:$SAGEMAKER_BIND_TO_PORT or 0.0.0.0:8080)")
	name := fs.String("model-name", "", "model name /v1/embeddings reports (default: the model folder's name)")
	maxBatchTokens := fs.Int("max-batch-tokens", serve.DefaultMaxBatchTokens, "padded tokens (rows × longest) per forward batch")
	maxBatchSize := fs.Int("max-batch-size", serve.DefaultMaxBatchSize, "inputs per forward batch")
	maxQueue := fs.Int("max-queue", serve.DefaultMaxQueue, "queued inputs before requests get 429")
	maxInputs := fs.Int("max-inputs", serve.DefaultMaxInputs, "inputs per request before 413")
	maxLines := fs.Int("max-client-batch-size", serve.DefaultMaxLines, "lines per JSON Lines /invocations request before 413 (TEI's name; JSON bodies are bounded by --max-inputs)")
	batchWait := fs.Duration("batch-wait", serve.DefaultBatchWait, "how long an input may wait for its batch to fill (0: no wait)")
	indexPath := fs.String("index", "", "answer POST /search from this index (embtune index), built with the same model")
	defaultPromptName := fs.String("default-prompt-name", "", "prompt for requests without prompt_name (/embed, /invocations) and for /v1/embeddings, "+
		"by name from config_sentence_transformers.json (empty: its default_prompt_name), as TEI's flag")
	var defaultPrompt optionalString
	fs.Var(&defaultPrompt, "default-prompt", "prompt text for requests without prompt_name, as TEI's flag (overrides --default-prompt-name)")
	truncateDim := registerTruncateDim(fs)
	stayUp := fs.Bool("stay-up-on-load-failure", false, "when the model fails to load, keep serving with /ping and every route answering 503 and the reason, "+
		"instead of exiting non-zero (default: true in a SageMaker container, whose /ping must answer; false elsewhere, as TEI)")
	var sf storeFlags
	sf.register(fs, true)
	// Every flag also reads EMBTUNE_<NAME>: the SageMaker inference
	// container starts `serve` with no arguments.
	cli, err := parseFlagsEnvCLI(fs, args, osLookupEnv)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("serve takes no arguments: unexpected argument %q (a boolean flag takes --name=false, not --name false)", fs.Arg(0))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max-batch-tokens", *maxBatchTokens}, {"max-batch-size", *maxBatchSize}, {"max-queue", *maxQueue}, {"max-inputs", *maxInputs}, {"max-client-batch-size", *maxLines}} {
		if f.v <= 0 {
			return usageError("--%s must be positive", f.name)
		}
	}
	if *batchWait < 0 {
		return usageError("--batch-wait must not be negative")
	}
	if *truncateDim < 0 {
		return usageError("--truncate-dim must be at least 1 (0: the model's full dimension)")
	}
	// A bad device is the operator's mistake: fail now, not on /ping.
	if _, err := torch.ParseDevice(mf.device); err != nil {
		return usageError("%v", err)
	}
	if _, err := minilm.ParseQuantization(mf.quantize); err != nil {
		return usageError("--quantize: %v", err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	// Only a --model on the command line says this is not the container:
	// EMBTUNE_MODEL may be part of the SageMaker model's Environment (a
	// folder inside model.tar.gz), and then it names the model.
	container, modelDir, containerAddr := sagemakerMode(os.Getenv, dirExists, cli["model"])
	if container && !given["model"] {
		mf.dir = modelDir
	}
	if !given["stay-up-on-load-failure"] {
		*stayUp = container
	}
	if !given["addr"] {
		*addr = serve.DefaultAddr
		if container {
			*addr = containerAddr
		}
	}
	if *name == "" {
		*name = filepath.Base(filepath.Clean(mf.dir))
	}
	if *defaultPromptName != "" && defaultPrompt.set {
		return usageError("give --default-prompt or --default-prompt-name, not both")
	}
	mf.defaultPrompt = hf.PromptChoice{Name: *defaultPromptName, Text: defaultPrompt.ptr()}
	if err := mf.checkPrompts(); err != nil {
		return err
	}
	var store corpus.Searcher
	if sf.url != "" {
		q, info, closeStore, err := openSearcher(ctx, *indexPath, sf, &mf)
		if err != nil {
			return err
		}
		defer closeStore()
		store = q
		slog.Info("opened store", "table", sf.table, "chunks", q.Len(), "documents", info.Documents, "exact", sf.exact)
	}
	var index *corpus.Index
	if *indexPath != "" && sf.url == "" {
		var err error
		if index, err = corpus.Load(*indexPath); err != nil {
			return err
		}
		if err := index.CheckModel(mf.dir); err != nil {
			return err
		}
		if err := checkDocumentPrompt(index.Info, &mf); err != nil {
			return err
		}
		slog.Info("loaded index", "path", *indexPath, "chunks", index.Len(), "documents", index.Info.Documents)
	}
	if err := checkServeDims(mf.dir, *truncateDim, index, store, *stayUp); err != nil {
		return err
	}
	slog.Info("starting server", "model", mf.dir, "addr", *addr, "sagemaker", container, "quantize", mf.quantize, "stay_up_on_load_failure", *stayUp)
	srv := serve.New(serve.Config{
		Addr:           *addr,
		ModelName:      *name,
		MaxInputs:      *maxInputs,
		MaxLines:       *maxLines,
		MaxBatchTokens: *maxBatchTokens,
		MaxBatchSize:   *maxBatchSize,
		MaxQueue:       *maxQueue,
		BatchWait:      *batchWait,
		Logger:         slog.Default(),
		Index:          index,
		Store:          store,
		TruncateDim:    *truncateDim,
		// ExitOnLoadFailure: outside a container a bad --model is the
		// operator's mistake, reported at once with a non-zero exit.
		ExitOnLoadFailure: !*stayUp,
	}, mf.load)
	return srv.ListenAndServe(ctx)
}

// sagemakerMode reports whether this runs as a SageMaker inference
// container: SAGEMAKER_BASE_DIR is set, or /opt/ml/model exists and the
// command line gave no --model. It returns the model folder and listen address
// SageMaker expects.
func sagemakerMode(getenv func(string) string, isDir func(string) bool, modelGiven bool) (container bool, modelDir, addr string) {
	port := getenv("SAGEMAKER_BIND_TO_PORT")
	if port == "" {
		port = "8080"
	}
	addr = "0.0.0.0:" + port
	if base := getenv("SAGEMAKER_BASE_DIR"); base != "" {
		return true, sagemaker.Layout{Base: base}.ModelDir(), addr
	}
	if !modelGiven && isDir(sagemakerModelDir) {
		return true, sagemakerModelDir, addr
	}
	return false, "", ""
}

// checkServeDims checks --truncate-dim against the model folder's
// dimension and the dimension of the index or store /search answers from,
// before the model loads. A folder that cannot be read is an error now
// unless stayUp (the loader then reports it on /ping).
func checkServeDims(modelDir string, truncateDim int, index *corpus.Index, store corpus.Searcher, stayUp bool) error {
	folder, _, err := hf.Open(modelDir, 0)
	if err != nil {
		if truncateDim > 0 || index != nil || store != nil || !stayUp {
			return err
		}
		return nil
	}
	modelDim := folder.Dim() // after pooling and Dense modules
	if err := embedding.CheckTruncateDim(truncateDim, modelDim); err != nil {
		return usageError("--truncate-dim: %v", err)
	}
	served := modelDim
	if truncateDim > 0 {
		served = truncateDim
	}
	var indexDim int
	switch {
	case store != nil:
		if s, ok := store.(interface{ Info() corpus.Info }); ok {
			indexDim = s.Info().Dim
		}
	case index != nil:
		indexDim = index.Info.Dim
	}
	if indexDim > 0 {
		return checkIndexDim(indexDim, served, truncateDim > 0)
	}
	return nil
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
