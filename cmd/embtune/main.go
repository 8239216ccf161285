// Command embtune fine-tunes and serves sentence-embedding models over libtorch.
//
//	embtune encode     --model DIR [--batch-size N] < texts.txt > vectors.jsonl
//	embtune similarity --model DIR "text a" "text b"
//	embtune tokenize   --model DIR [--max-seq-length N] [TEXT...] < texts.txt
//	embtune export     --model DIR [--torchscript FILE] [--folder DIR]
//	embtune index      --model DIR --output FILE PATH...
//	embtune query      --model DIR --index FILE [--top-k 5] [QUERY...]
//	embtune info
//
// Flags parse here; the work happens in the packages they call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/embtune/embtune/sagemaker"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"encode", "embed one text per input line; one JSON array per output line", runEncode},
		{"similarity", "print the cosine similarity of two texts", runSimilarity},
		{"tokenize", "print the input ids and tokens the model sees, one JSON object per text", runTokenize},
		{"train", "fine-tune on question/answer pairs; evaluate base vs tuned; export", runTrain},
		{"eval", "retrieval metrics of a model on pairs (InformationRetrievalEvaluator)", runEval},
		{"compare", "compare the tuned models of two training reports (eval.json) on the same held-out questions", runCompare},
		{"data", "build training pairs: 'data faq FILE' imports an FAQ document; 'data generate' asks an LLM for questions on document chunks", runDataCommand},
		{"index", "chunk and embed documents into an index file (the retrieval half of RAG)", runIndex},
		{"query", "search an index: the chunks nearest to each query by cosine similarity", runQuery},
		{"serve", "serve embeddings over HTTP (SageMaker /ping, /invocations; /embed; /v1/embeddings; /metrics)", runServe},
		{"package", "build model.tar.gz for SageMaker from a training output folder", runPackage},
		{"sagemaker", "push to S3, create training jobs and endpoints, invoke (aws-sdk-go-v2)", runSageMaker},
		{"export", "write the model as TorchScript and/or a sentence-transformers folder", runExport},
		{"bench", "time encoding a text file; encoder GFLOP/s against GEMM", runBench},
		{"info", "print the libtorch build this binary uses: version, threads, CUDA devices and its build configuration", runInfo},
		{"version", "print embtune's version, revision and libtorch version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: embtune COMMAND [flags]")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "Run 'embtune COMMAND --help' for a command's flags.")
}

func main() {
	slog.SetDefault(slog.New(sagemaker.LogHandler(os.Stderr)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 2 && args[0] == "help" {
		// `embtune help COMMAND` is `embtune COMMAND --help`.
		args = []string{args[1], "--help"}
		if !slices.ContainsFunc(commands(), func(c command) bool { return c.name == args[0] }) {
			fmt.Fprintf(stderr, "embtune help: unknown command %q\n", args[0])
			usage(stderr)
			return 2
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 1 {
			return 0
		}
		return 2 // nothing, or help with more than one word
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "embtune %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "embtune %s: %v\n", c.name, explainDefaultModel(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "embtune: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// operands are what a command takes besides flags, for its usage line.
var operands = map[string]string{
	"encode":        "< texts.txt > vectors.jsonl",
	"similarity":    "TEXT_A TEXT_B",
	"tokenize":      "[TEXT...] (or one text per line on standard input)",
	"index":         "PATH... (files or folders of documents)",
	"query":         "[QUERY...] (or one query per line on standard input)",
	"data faq":      "FILE[.gz] > pairs.jsonl",
	"data generate": "[PATH...] (more --docs)",
}

// summaryOf is the one-line description of a command or subcommand
// ("sagemaker push", "data faq").
func summaryOf(name string) string {
	switch name {
	case "data faq":
		return "import an FAQ document (Debian FAQ text, Markdown or reStructuredText): one question/answer pair per heading ending in \"?\""
	case "data generate":
		return "ask an LLM for questions that document chunks answer: training pairs from documents alone"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.summary
		}
	}
	for _, c := range smSubcommands {
		if "sagemaker "+c.name == name {
			return c.summary
		}
	}
	return ""
}

// newFlags returns a flag set that reports errors instead of exiting. Its
// --help prints the usage line, the command's description and its flags.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("embtune "+name, flag.ContinueOnError)
	fs.SetOutput(usageOutput)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: embtune %s [flags]", name)
		if o := operands[name]; o != "" {
			fmt.Fprintf(w, " %s", o)
		}
		fmt.Fprintln(w)
		if s := summaryOf(name); s != "" {
			fmt.Fprintf(w, "\n%s\n", s)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	if flagSetCreated != nil {
		flagSetCreated(name, fs)
	}
	return fs
}

// usageOutput receives --help and usage messages (tests capture it).
var usageOutput io.Writer = os.Stderr

// flagSetCreated, when set (by tests), sees every flag set newFlags makes,
// so a test can read a command's flags by running it with --help.
var flagSetCreated func(name string, fs *flag.FlagSet)

// parseFlagsOnly is parseFlags for commands that take no arguments besides
// flags. A leftover argument is an error rather than silently dropped: Go
// stops parsing at the first one, so "--gemm false" (a boolean flag takes
// --gemm=false) would otherwise drop every flag after it.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q (a boolean flag takes --name=false, not --name false)", fs.Arg(0))
	}
	return nil
}

// parseFlags parses flags wherever they stand among the positional
// arguments (`query --index x "text" --top-k 1` reads --top-k, rather than
// embedding it as a query); fs.Args() then holds the positional ones in
// their order. After "--" everything is positional, so a text that starts
// with "-" goes there.
func parseFlags(fs *flag.FlagSet, args []string) error {
	_, err := parseInterspersed(fs, args)
	return err
}

// parseInterspersed is parseFlags returning the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseSome(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); len(rest) == 0 || used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// fs.Args() becomes pos: a lone "--" ends flag parsing and is dropped.
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil {
		return nil, usageError("%v", err)
	}
	return pos, nil
}

// parseSome parses flags up to the first positional argument.
func parseSome(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	return nil
}
