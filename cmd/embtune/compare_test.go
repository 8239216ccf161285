package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/finetune"
)

// foldsReport is a training report of two folds of five questions whose
// tuned ndcg@10 is tuned[f][i].
func foldsReport(tuned [2][5]float64) finetune.Report {
	var r finetune.Report
	for f := range tuned {
		fr := finetune.FoldReport{Fold: f + 1, Test: 5}
		for i, v := range tuned[f] {
			fr.Questions = append(fr.Questions, finetune.QuestionScore{ID: 5*f + i + 1, Question: fmt.Sprintf("question %d of fold %d?", i, f+1),
				Base: map[string]float64{"ndcg@10": 0.5}, Tuned: map[string]float64{"ndcg@10": v}, BaseRank: 2, TunedRank: 1})
		}
		r.Folds = append(r.Folds, fr)
	}
	return r
}

func TestCompareReports(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	require.NoError(t, finetune.WriteReport(a, foldsReport([2][5]float64{{0.5, 0.5, 0.6, 0.5, 0.4}, {0.5, 0.3, 0.5, 0.5, 0.5}})))
	require.NoError(t, finetune.WriteReport(b, foldsReport([2][5]float64{{0.9, 0.8, 1, 0.7, 0.6}, {1, 0.9, 0.8, 0.7, 1}})))
	code, out, stderr := runCLI(ctx, []string{"compare", a, b}, "")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, fmt.Sprintf("A = %s (tuned)\nB = %s (tuned)\n", a, b))
	assert.Contains(t, out, "pooled         10     0.8400     0.4800  -0.3600")
	assert.Contains(t, out, fmt.Sprintf("verdict: %s is worse than %s", a, b))

	code, _, stderr = runCLI(ctx, []string{"compare", a}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "give two training reports")

	code, _, stderr = runCLI(ctx, []string{"compare", "--metric", "bogus@3", a, b}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--metric")

	c := filepath.Join(dir, "c.json")
	require.NoError(t, finetune.WriteReport(c, finetune.Report{Folds: foldsReport([2][5]float64{}).Folds[:1]}))
	code, _, stderr = runCLI(ctx, []string{"compare", a, c}, "")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "has 2 folds and")
}

func TestTrainDataFlags(t *testing.T) {
	ctx := context.Background()
	code, _, stderr := runCLI(ctx, []string{"train", "--data", "real.jsonl", "--train-data", "generated.jsonl"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--train-data needs --folds")
	code, _, stderr = runCLI(ctx, []string{"train", "--data", "real.jsonl", "--folds", "5", "--train-data", "generated.jsonl", "--train-data-scope", "some"}, "")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `--train-data-scope: want all or fold, got "some"`)
}
