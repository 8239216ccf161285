package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFlagsAfterArguments: every subcommand reads a flag that follows a
// positional argument (`query --index x "text" --top-k 1`), instead of
// taking it as one more argument or dropping it. The flag's value is read
// back from the command's flag set, whatever the run then fails on.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	faq := filepath.Join(dir, "faq.txt")
	writeFile(t, faq, "1.1 What is it?\n\nIt is a test.\n")
	missing := filepath.Join(dir, "no-model")
	for _, c := range []struct {
		args       []string
		flag, want string
	}{
		{[]string{"query", "--index", "x.index", "how to pin a package", "--top-k", "3"}, "top-k", "3"},
		{[]string{"query", "one", "two", "--json"}, "json", "true"},
		{[]string{"index", filepath.Join(dir, "docs"), "--output", "out.index"}, "output", "out.index"},
		{[]string{"similarity", "a", "b", "--model", missing}, "model", missing},
		{[]string{"encode", "x", "--batch-size", "3"}, "batch-size", "3"},
		{[]string{"data", "faq", faq, "--id-prefix", "zz"}, "id-prefix", "zz"},
		{[]string{"eval", "x", "--data", "pairs.jsonl"}, "data", "pairs.jsonl"},
		{[]string{"train", "x", "--epochs", "3"}, "epochs", "3"},
		{[]string{"export", "x", "--folder", "out"}, "folder", "out"},
		{[]string{"serve", "x", "--max-inputs", "7"}, "max-inputs", "7"},
		{[]string{"bench", "x", "--reps", "9"}, "reps", "9"},
		{[]string{"info", "x", "--help"}, "", ""},
		{[]string{"package", "x", "--name", "m"}, "name", "m"},
		{[]string{"sagemaker", "invoke", "text", "--endpoint", "ep"}, "endpoint", "ep"},
		{[]string{"sagemaker", "push", "x", "--bucket", "b"}, "bucket", "b"},
	} {
		var sets []*flag.FlagSet
		flagSetCreated = func(_ string, fs *flag.FlagSet) { sets = append(sets, fs) }
		code, stdout, stderr := runCLI(context.Background(), c.args, "")
		flagSetCreated = nil
		require.NotEmpty(t, sets, "%v", c.args)
		if c.flag == "" { // info: --help after an argument is still help
			assert.Equal(t, 0, code, "%v: %s", c.args, stderr)
			continue
		}
		fs := sets[len(sets)-1]
		f := fs.Lookup(c.flag)
		require.NotNil(t, f, "%v", c.args)
		assert.Equal(t, c.want, f.Value.String(), "%v: %s", c.args, stderr)
		// Nothing positional that looks like a flag is left over.
		for _, a := range fs.Args() {
			assert.False(t, strings.HasPrefix(a, "-"), "%v: %q taken as an argument", c.args, a)
		}
		assert.NotContains(t, stdout, "--", c.args)
	}
}

// TestDoubleDashEndsFlags: after "--" an argument that starts with "-" is
// positional, and the flags before it still count.
func TestDoubleDashEndsFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	k := fs.Int("top-k", 5, "")
	require.NoError(t, parseFlags(fs, []string{"a", "--top-k", "2", "b", "--", "--top-k", "-x"}))
	assert.Equal(t, 2, *k)
	assert.Equal(t, []string{"a", "b", "--top-k", "-x"}, fs.Args())
}

// TestQueryTopKAfterText: the probe's command gives one query, not three.
func TestQueryTopKAfterText(t *testing.T) {
	code, _, stderr := runCLI(context.Background(), []string{"query", "--index", filepath.Join(t.TempDir(), "x.index"), "how to pin a package", "--top-k", "0"}, "")
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "--top-k must be at least 1")
}

// TestHelp: `help COMMAND` is `COMMAND --help` (its flags, exit 0), an
// unknown one fails, `data --help` exits 0 like the rest, and no message
// says "usage: usage:".
func TestHelp(t *testing.T) {
	var flagsOut bytes.Buffer
	usageOutput = &flagsOut
	defer func() { usageOutput = os.Stderr }()
	code, _, stderr := runCLI(context.Background(), []string{"help", "serve"}, "")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, flagsOut.String(), "-max-batch-tokens")
	assert.NotContains(t, stderr, "commands:")

	code, _, stderr = runCLI(context.Background(), []string{"help", "nosuch"}, "")
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, `unknown command "nosuch"`)

	code, _, stderr = runCLI(context.Background(), []string{"help"}, "")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "commands:")

	for _, args := range [][]string{{"data", "--help"}, {"data", "-h"}, {"data", "faq", "--help"}, {"query", "--help"}, {"sagemaker", "--help"}} {
		flagsOut.Reset()
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 0, code, "%v: %s", args, stderr)
		assert.Contains(t, flagsOut.String(), "usage: embtune "+args[0], args)
	}

	for _, args := range [][]string{{"data"}, {"data", "nosuch"}, {"data", "faq"}} {
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.NotContains(t, stderr, "usage: usage:", args)
	}
}

// TestEveryHelp: every command and subcommand answers --help with exit 0,
// a usage line, its one-line description and (for those with flags) its
// flags; none says "usage: usage:" or Go's bare "Usage of".
func TestEveryHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string // a phrase of the description
	}{
		{[]string{"encode"}, "embed one text per input line"},
		{[]string{"similarity"}, "cosine similarity"},
		{[]string{"tokenize"}, "input ids and tokens"},
		{[]string{"train"}, "fine-tune"},
		{[]string{"eval"}, "retrieval metrics"},
		{[]string{"compare"}, "two training reports"},
		{[]string{"data"}, "build training pairs"},
		{[]string{"data", "faq"}, "import an FAQ document"},
		{[]string{"data", "generate"}, "ask an LLM"},
		{[]string{"index"}, "chunk and embed documents"},
		{[]string{"query"}, "search an index"},
		{[]string{"serve"}, "serve embeddings over HTTP"},
		{[]string{"package"}, "model.tar.gz"},
		{[]string{"sagemaker"}, "train-job"},
		{[]string{"sagemaker", "push"}, "upload a file"},
		{[]string{"sagemaker", "train-job"}, "training job"},
		{[]string{"sagemaker", "deploy"}, "endpoint"},
		{[]string{"sagemaker", "invoke"}, "embed texts on an endpoint"},
		{[]string{"sagemaker", "batch-embed"}, "Batch Transform"},
		{[]string{"export"}, "TorchScript"},
		{[]string{"bench"}, "time encoding"},
		{[]string{"info"}, "libtorch build"},
		{[]string{"version"}, "embtune's version"},
	}
	listed := map[string]bool{}
	for _, c := range cases {
		listed[c.args[0]] = true
	}
	for _, c := range commands() {
		assert.True(t, listed[c.name], "command %s has no --help case", c.name)
	}
	var out bytes.Buffer
	usageOutput = &out
	defer func() { usageOutput = os.Stderr }()
	for _, c := range cases {
		for _, help := range []string{"--help", "-h"} {
			out.Reset()
			args := append(append([]string{}, c.args...), help)
			code, stdout, stderr := runCLI(context.Background(), args, "")
			text := out.String()
			assert.Equal(t, 0, code, "%v: %s", args, stderr)
			assert.Empty(t, stdout, args)
			assert.True(t, strings.HasPrefix(text, "usage: embtune "+strings.Join(c.args, " ")), "%v:\n%s", args, text)
			assert.Contains(t, text, c.want, args)
			assert.NotContains(t, text+stderr, "usage: usage:", args)
			assert.NotContains(t, text, "Usage of", args)
		}
	}
}

// TestSubcommandListsAligned: in `sagemaker --help` and `data --help` the
// subcommands' descriptions start in one column.
func TestSubcommandListsAligned(t *testing.T) {
	var out bytes.Buffer
	usageOutput = &out
	defer func() { usageOutput = os.Stderr }()
	for _, cmd := range []string{"sagemaker", "data"} {
		out.Reset()
		code, _, stderr := runCLI(context.Background(), []string{cmd, "--help"}, "")
		require.Equal(t, 0, code, stderr)
		cols := map[int]bool{}
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if !strings.HasPrefix(line, "  ") {
				continue
			}
			name := strings.Fields(line)[0]
			rest := line[2+len(name):]
			cols[2+len(name)+len(rest)-len(strings.TrimLeft(rest, " "))] = true
			n++
		}
		assert.GreaterOrEqual(t, n, 2, "%s --help lists its subcommands:\n%s", cmd, out.String())
		assert.Len(t, cols, 1, "%s --help:\n%s", cmd, out.String())
	}
}
