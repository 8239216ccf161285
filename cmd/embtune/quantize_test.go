package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantizeFlag(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	code, out, stderr := runCLI(ctx, []string{"encode", "--model", m, "--quantize", "int8"}, "first text\nsecond\n")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var v []float32
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &v))
	assert.Len(t, v, 384)

	code, _, stderr = runCLI(ctx, []string{"encode", "--model", m, "--quantize", "int4"}, "x\n")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown quantization "int4"`)

	t.Setenv("EMBTUNE_QUANTIZE", "int7")
	code, _, stderr = runCLI(ctx, []string{"serve", "--model", m}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown quantization "int7"`)
}
