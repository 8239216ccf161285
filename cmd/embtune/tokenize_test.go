package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenizePrintsWhatSentenceTransformersFeeds: `embtune tokenize` on the
// model folder gives, per text, the ids sentence-transformers feeds the
// model (testdata/golden/tokens.jsonl, tools/golden/generate.py corpus).
func TestTokenizePrintsWhatSentenceTransformersFeeds(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "golden", "tokens.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	type golden struct {
		Text string  `json:"text"`
		IDs  []int64 `json:"ids"`
	}
	var lines []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var g golden
		require.NoError(t, json.Unmarshal(sc.Bytes(), &g))
		if !strings.ContainsAny(g.Text, "\r\n") {
			lines = append(lines, g)
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, lines)
	var in bytes.Buffer
	for _, g := range lines {
		in.WriteString(g.Text + "\n")
	}
	var out bytes.Buffer
	require.NoError(t, runTokenize(context.Background(), []string{"--model", modelDir(t)}, &in, &out))
	dec := json.NewDecoder(&out)
	for i, g := range lines {
		var got struct {
			IDs       []int64  `json:"ids"`
			Tokens    []string `json:"tokens"`
			Truncated bool     `json:"truncated"`
		}
		require.NoError(t, dec.Decode(&got), "text %d", i)
		require.Equal(t, g.IDs, got.IDs, "text %d %.60q", i, g.Text)
		require.Len(t, got.Tokens, len(got.IDs))
		assert.Equal(t, "[CLS]", got.Tokens[0])
		assert.Equal(t, "[SEP]", got.Tokens[len(got.Tokens)-1])
	}
	assert.False(t, dec.More(), "one object per text")
}
