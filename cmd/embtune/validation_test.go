package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTrainValidationFlags: bad validation settings are usage errors that
// say what is wrong, before any model is loaded.
func TestTrainValidationFlags(t *testing.T) {
	dir, data := fortyPairs(t)
	base := []string{"train", "--model", filepath.Join(dir, "no-model"), "--data", data, "--output", filepath.Join(dir, "out")}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--metric-for-best-model", "bleu@10"}, 2, `unknown metric for best model "bleu@10" (want one of accuracy@1,`},
		{[]string{"--wise-ft", "1.5"}, 2, `wise-ft "1.5": want auto, off, or an α in [0, 1]`},
		{[]string{"--eval-strategy", "sometimes"}, 2, `unknown eval strategy "sometimes"`},
		{[]string{"--eval-strategy", "steps"}, 2, "eval strategy steps needs --eval-steps"},
		{[]string{"--eval-strategy", "no"}, 2, "load best model at end needs evaluations"},
		{[]string{"--load-best-model-at-end", "maybe"}, 2, "--load-best-model-at-end takes true or false"},
		{[]string{"--validation-split", "1"}, 2, "validation split 1 is not in [0, 1)"},
		{[]string{"--refit=maybe"}, 2, `invalid boolean value "maybe" for -refit: want true or false`},
		{[]string{"--refit", "--validation-split", "0"}, 2, "refit needs a validation split"},
		{[]string{"--refit=true", "--eval-split", "0.2", "--validation-split", "0"}, 2, "refit needs a validation split"},
		{[]string{"--validation-split", "0.5", "--folds", "5"}, 1,
			"validation split 0.5 leaves 16 training pairs, fewer than a batch of 32: lower --validation-split or --batch-size"},
	} {
		args := append(append([]string(nil), base...), c.args...)
		if c.code == 1 {
			args[2] = modelDir(t) // the split is checked after the flags, before any model loads
		}
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, c.code, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, c.args)
	}
}

// TestTrainValidationSplitOffDropsPresetRefit: the default preset refits,
// which needs a validation split, so --validation-split 0 alone turns the
// preset's refit off rather than failing; the run then fails only on the
// missing model.
func TestTrainValidationSplitOffDropsPresetRefit(t *testing.T) {
	dir, data := fortyPairs(t)
	for _, extra := range [][]string{{"--validation-split", "0"}, {"--validation-split", "0", "--refit=false"}} {
		args := append([]string{"train", "--model", filepath.Join(dir, "no-model"), "--data", data, "--output", filepath.Join(dir, "out")}, extra...)
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 1, code, stderr)
		assert.NotContains(t, stderr, "refit", extra)
		assert.Contains(t, stderr, "no-model", extra)
	}
}

// fortyPairs writes 40 synthetic pairs to a temporary folder.
func fortyPairs(t *testing.T) (dir, data string) {
	t.Helper()
	dir = t.TempDir()
	data = filepath.Join(dir, "pairs.jsonl")
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, `{"question": "question number %d?", "answer": "answer number %d."}`+"\n", i, i)
	}
	require.NoError(t, os.WriteFile(data, []byte(b.String()), 0o644))
	return dir, data
}

// TestLeftoverArgumentRefused: Go's flag package stops at the first
// argument that is not a flag, so "--gemm false" (a boolean flag takes
// --gemm=false) used to drop every flag after it silently; bench, train
// and serve now refuse it before loading anything.
func TestLeftoverArgumentRefused(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--texts", "x.txt", "--gemm", "false", "--quantize", "int8"},
		{"train", "--data", "x.jsonl", "--checkpoints", "false", "--epochs", "1"},
		{"serve", "--model", "x", "extra"},
	} {
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
		assert.Contains(t, stderr, "unexpected argument", args)
		assert.Contains(t, stderr, "--name=false", args)
	}
}
