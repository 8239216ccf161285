package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMiniBatchSizeFlag: --mini-batch-size refuses what cannot be a
// mini-batch of the batch, before any model loads.
func TestMiniBatchSizeFlag(t *testing.T) {
	dir := t.TempDir()
	base := []string{"train", "--model", filepath.Join(dir, "no-model"), "--data", filepath.Join(dir, "no-data.jsonl"),
		"--output", filepath.Join(dir, "out")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--mini-batch-size", "0"}, "--mini-batch-size must be at least 1, not 0"},
		{[]string{"--mini-batch-size", "-4"}, "--mini-batch-size must be at least 1, not -4"},
		{[]string{"--mini-batch-size", "64", "--batch-size", "32"}, "mini batch size 64 is larger than the batch size 32"},
		{[]string{"--mini-batch-size", "eight"}, `invalid value "eight" for flag -mini-batch-size`},
	} {
		args := append(append([]string(nil), base...), c.args...)
		code, _, stderr := runCLI(context.Background(), args, "")
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, c.args)
	}
}
