package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/finetune"
)

func TestEvalCompare(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	write := func(name string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "{\"anchor\": \"How do I configure service number %d?\", \"positive\": \"Service %d reads its settings from /etc/service-%d.conf.\"}\n", i, i, i)
		}
		path := filepath.Join(dir, name)
		writeFile(t, path, b.String())
		return path
	}
	data, small := write("pairs.jsonl", 8), write("small.jsonl", 4)

	// A model against itself: every question's gain is zero.
	code, out, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--compare", m, "--scores", filepath.Join(dir, "a.json")}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "task            8")
	assert.Contains(t, out, "gain +0.0000 over 8 questions, 95% CI +0.0000 … +0.0000 (paired bootstrap over questions, 10000 resamples, seed 42)")
	assert.Contains(t, out, "verdict: no significant difference (95% CI +0.000 … +0.000)")

	// The scores file holds every question, and compares like the model.
	b, err := os.ReadFile(filepath.Join(dir, "a.json"))
	require.NoError(t, err)
	var s finetune.ModelScores
	require.NoError(t, json.Unmarshal(b, &s))
	require.Len(t, s.Questions, 8)
	assert.Equal(t, 3, s.Questions[2].ID)
	assert.Equal(t, "How do I configure service number 2?", s.Questions[2].Question)
	assert.Contains(t, s.Questions[2].Scores, "ndcg@10")
	assert.Positive(t, s.Questions[2].Rank)
	code, fromFile, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--compare", filepath.Join(dir, "a.json")}, "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, strings.ReplaceAll(out, "B = "+m, "B = "+m), fromFile)

	// Scores of another task: refused.
	code, _, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--eval-split", "0.5", "--compare", filepath.Join(dir, "a.json")}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "were evaluated on different tasks: 4 questions against 8")

	// Four questions: no interval.
	code, out, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", small, "--compare", m}, "")
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, out, "CI")
	assert.Contains(t, out, "verdict: no interval: the test split has 4 test questions; a paired interval needs at least 5 per split")

	code, _, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--compare", m, "--metric", "bogus@3"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--metric")
}

// TestEvalCorpusScoresAFold: --data a held-out file with --corpus the whole
// data set scores as --eval-split does on the whole file (queries from the
// split, the corpus every positive), question ids included.
func TestEvalCorpusScoresAFold(t *testing.T) {
	ctx := context.Background()
	m := modelDir(t)
	dir := t.TempDir()
	data := filepath.Join("..", "..", "testdata", "data", "debian-faq.jsonl")
	split, err := dataset.Load(data)
	require.NoError(t, err)
	held, err := dataset.TrainTestSplit(split, 0.2, 42)
	require.NoError(t, err)
	var test strings.Builder
	for _, p := range held.Test {
		b, err := json.Marshal(map[string]string{"anchor": p.Anchor, "positive": p.Positive})
		require.NoError(t, err)
		test.Write(append(b, '\n'))
	}
	fold := filepath.Join(dir, "test.jsonl")
	writeFile(t, fold, test.String())

	code, want, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", data, "--eval-split", "0.2",
		"--scores", filepath.Join(dir, "split.json")}, "")
	require.Equal(t, 0, code, stderr)
	code, got, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", fold, "--corpus", data,
		"--scores", filepath.Join(dir, "fold.json")}, "")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, want, got)
	a, err := finetune.ReadScores(filepath.Join(dir, "split.json"))
	require.NoError(t, err)
	b, err := finetune.ReadScores(filepath.Join(dir, "fold.json"))
	require.NoError(t, err)
	assert.Equal(t, a.Questions, b.Questions)

	// Alone, the held-out file's corpus is its own 24 positives: easier.
	code, alone, stderr := runCLI(ctx, []string{"eval", "--model", m, "--data", fold}, "")
	require.Equal(t, 0, code, stderr)
	assert.NotEqual(t, want, alone)

	code, _, stderr = runCLI(ctx, []string{"eval", "--model", m, "--data", fold, "--corpus", filepath.Join(dir, "nosuch.jsonl")}, "")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "--corpus")
}
