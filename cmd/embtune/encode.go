package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
	"github.com/embtune/embtune/vecmath"
)

// defaultModelDir is the model `make deps` fetches, relative to the
// repository root.
const defaultModelDir = "third_party/models/all-MiniLM-L6-v2"

// defaultModel is --model's default: $EMBTUNE_MODEL; else defaultModelDir
// in the current directory; else in the repository the executable sits in
// (bin/embtune, so that it runs from any directory). Where none exists,
// looked lists the places tried and the default stays relative.
func defaultModel(getenv func(string) string, executable func() (string, error)) (dir string, looked []string) {
	if m := getenv("EMBTUNE_MODEL"); m != "" {
		return m, nil
	}
	candidates := []string{defaultModelDir}
	if exe, err := executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real // a symlink in ~/bin to the repository's bin/embtune
		}
		// bin/embtune, or a binary at the repository root.
		for d, up := filepath.Dir(exe), 0; up < 2; d, up = filepath.Dir(d), up+1 {
			candidates = append(candidates, filepath.Join(d, defaultModelDir))
		}
	}
	for _, c := range candidates {
		if dirExists(c) {
			return c, nil
		}
	}
	return defaultModelDir, candidates
}

// defaultModelLooked is where the last defaultModel call looked in vain,
// for the error a command without --model fails with.
var defaultModelLooked []string

// explainDefaultModel adds, to an error from a missing default model
// folder, where the default was looked for and how to name a model.
func explainDefaultModel(err error) error {
	if len(defaultModelLooked) == 0 || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), defaultModelDir) {
		return err
	}
	return fmt.Errorf("%w\nno --model was given and the default model folder is not in %s; "+
		"pass --model DIR (a sentence-transformers folder) or set EMBTUNE_MODEL=DIR, or run `make deps` in the repository to fetch the default",
		err, strings.Join(defaultModelLooked, " nor "))
}

// modelFlags are the flags every model-loading command shares.
type modelFlags struct {
	dir          string
	device       string
	threads      int
	maxSeqLength int
	quantize     string
	bf16         bool
	prompts      promptFlags
	// defaultPrompt is encode's --prompt-name / --prompt (encode()'s).
	defaultPrompt hf.PromptChoice
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	def, looked := defaultModel(os.Getenv, os.Executable)
	defaultModelLooked = looked
	fs.StringVar(&m.dir, "model", def, "sentence-transformers model folder (env EMBTUNE_MODEL; default: "+
		defaultModelDir+" in the current directory, else in the repository of the embtune binary, bin/embtune's parent)")
	fs.StringVar(&m.device, "device", "auto", "auto, cpu, cuda or cuda:N")
	fs.IntVar(&m.threads, "threads", 0, "libtorch intra-op threads (0: all cores)")
	fs.IntVar(&m.maxSeqLength, "max-seq-length", 0, "truncate at this many tokens (0: the model's max_seq_length)")
	m.prompts.register(fs)
}

// registerQuantize adds --quantize, for the commands that only encode.
func (m *modelFlags) registerQuantize(fs *flag.FlagSet) {
	fs.StringVar(&m.quantize, "quantize", os.Getenv("EMBTUNE_QUANTIZE"),
		"Linear layers on the CPU: none or int8 (env EMBTUNE_QUANTIZE; int8-no-smooth, int8-reduce-range, int8-mixed, int8-per-tensor, int8-unfused and fp16 are the measured alternatives)")
}

func (m *modelFlags) load(ctx context.Context) (*minilm.Model, error) {
	q, err := minilm.ParseQuantization(m.quantize)
	if err != nil {
		return nil, usageError("--quantize: %v", err)
	}
	device := m.device
	if q != minilm.NoQuantization && (device == "" || device == "auto") {
		// The quantized encoder runs on the CPU only; auto picks it.
		device = "cpu"
	}
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return nil, usageError("%v", err)
	}
	query, document, err := m.prompts.choices()
	if err != nil {
		return nil, err
	}
	return minilm.Load(ctx, m.dir, minilm.Options{Device: dev, Threads: m.threads, MaxSeqLength: m.maxSeqLength, Quantize: q, BF16: m.bf16,
		QueryPrompt: query, DocumentPrompt: document, DefaultPrompt: m.defaultPrompt})
}

// registerBF16 adds --bf16 for commands that only encode (train has its own).
func (m *modelFlags) registerBF16(fs *flag.FlagSet) {
	fs.BoolVar(&m.bf16, "bf16", false, "encode under bfloat16 autocast")
}

// maxLineBytes bounds one input line; sentence-transformers truncates at
// max_seq_length tokens anyway, so 16 MiB is generous.
const maxLineBytes = 16 << 20

func runEncode(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("encode")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	mf.registerBF16(fs)
	batch := fs.Int("batch-size", minilm.DefaultBatchSize, "texts per forward pass")
	role := fs.String("role", "default", "which prompt the texts get, as sentence-transformers' encode (default: default_prompt_name's prompt, "+
		"or --prompt-name/--prompt), encode_query (query: --query-prompt…) or encode_document (document: --document-prompt…)")
	promptName := fs.String("prompt-name", "", "with --role default: a prompt name from config_sentence_transformers.json (encode's prompt_name=)")
	var prompt optionalString
	fs.Var(&prompt, "prompt", "with --role default: prompt text prepended to every text (encode's prompt=)")
	truncateDim := registerTruncateDim(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("encode reads texts from standard input, one per line")
	}
	switch {
	case *role != "default" && *role != "query" && *role != "document":
		return usageError("--role must be default, query or document, not %q", *role)
	case *role != "default" && (*promptName != "" || prompt.set):
		return usageError("--prompt and --prompt-name go with --role default; use --%s-prompt or --%s-prompt-name", *role, *role)
	case *promptName != "" && prompt.set:
		return usageError("give --prompt or --prompt-name, not both")
	}
	mf.defaultPrompt = hf.PromptChoice{Name: *promptName, Text: prompt.ptr()}
	if *truncateDim < 0 {
		return usageError("--truncate-dim must be at least 1 (0: the model's full dimension)")
	}
	texts, err := readLines(stdin)
	if err != nil {
		return err
	}
	if len(texts) == 0 {
		return fmt.Errorf("no input: write one text per line to standard input")
	}
	m, err := mf.load(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	enc, err := truncating(m, *truncateDim, m.Dim())
	if err != nil {
		return err
	}
	var vecs [][]float32
	switch *role {
	case "query":
		vecs, err = embedding.Queries(ctx, enc, texts, *batch)
	case "document":
		vecs, err = embedding.Documents(ctx, enc, texts, *batch)
	default:
		vecs, err = enc.Encode(ctx, texts, *batch)
	}
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	for _, v := range vecs {
		writeVector(w, v)
	}
	return w.Flush()
}

// readLines splits input into lines, dropping the final newline and a
// trailing \r; an empty line is an (empty) text.
func readLines(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading input line %d: %w", len(out)+1, err)
	}
	return out, nil
}

// writeVector writes a JSON array of float32s with the shortest decimal
// form that reads back to the same float32.
func writeVector(w *bufio.Writer, v []float32) {
	buf := make([]byte, 0, 16)
	w.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			w.WriteByte(',')
		}
		buf = strconv.AppendFloat(buf[:0], float64(x), 'g', -1, 32)
		w.Write(buf)
	}
	w.WriteString("]\n")
}

func runSimilarity(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("similarity")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError("similarity takes exactly two texts")
	}
	m, err := mf.load(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	vecs, err := m.Encode(ctx, fs.Args(), 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.4f\n", vecmath.Cosine(vecs[0], vecs[1]))
	return err
}

func runExport(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("export")
	var mf modelFlags
	mf.register(fs)
	ts := fs.String("torchscript", "", "write the TorchScript encoder to this file")
	folder := fs.String("folder", "", "write a sentence-transformers folder here")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *ts == "" && *folder == "" {
		return usageError("give --torchscript FILE and/or --folder DIR")
	}
	m, err := mf.load(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	if *folder != "" && *ts != "" && filepath.Clean(*ts) == filepath.Join(*folder, "model.pt") {
		// model.pt inside the folder is written as part of its set.
		if err := m.SaveFolderWithTorchScript(ctx, *folder); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\nwrote %s\n", *ts, *folder)
		return nil
	}
	if *ts != "" {
		if err := os.MkdirAll(filepath.Dir(*ts), 0o755); err != nil {
			return err
		}
		if err := m.SaveTorchScript(ctx, *ts); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *ts)
	}
	if *folder != "" {
		if err := m.SaveFolder(ctx, *folder); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *folder)
	}
	return nil
}

func runInfo(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("info")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	v, err := torch.Version()
	if err != nil {
		return err
	}
	cfg, err := torch.ShowConfig()
	if err != nil {
		return err
	}
	threads, _ := torch.NumThreads()
	n := torch.CUDADeviceCount()
	out := map[string]any{"libtorch": v, "cuda_build": torch.CUDABuild, "cuda_devices": n, "threads": threads}
	if torch.CUDABuild {
		var devs []torch.CUDADevice
		for i := 0; i < n; i++ {
			d, err := torch.CUDADeviceInfo(i)
			if err != nil {
				return err
			}
			devs = append(devs, d)
		}
		out["cuda"] = devs
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintf(stdout, "%s\n%s", b, cfg)
	return nil
}
