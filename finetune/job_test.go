package finetune

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/trainer"
)

// writePairs writes n distinct question/answer pairs as JSONL.
func writePairs(t *testing.T, n int) string {
	t.Helper()
	var pairs []dataset.Pair
	for i := range n {
		pairs = append(pairs, dataset.Pair{Anchor: fmt.Sprintf("How do I set up service %d on Debian?", i),
			Positive: fmt.Sprintf("Service %d is configured under /etc/service-%d; restart it afterwards.", i, i)})
	}
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	var b bytes.Buffer
	require.NoError(t, dataset.Write(&b, pairs, dataset.FormatJSONL))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

func smallJob(t *testing.T, data string) *Job {
	hp := trainer.DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength, hp.ValidationSplit = 1, 4, 32, 0
	return &Job{ModelDir: testmodel.Dir(t), DataPath: data, OutputDir: filepath.Join(t.TempDir(), "out"), Hyper: hp}
}

func TestRunBadInput(t *testing.T) {
	data := writePairs(t, 8)
	j := &Job{DataPath: data, EvalSplit: 0.25, Folds: 2, Hyper: trainer.DefaultHyperParameters()}
	_, err := j.Run(context.Background())
	assert.ErrorContains(t, err, "use one of an eval split, folds or test data")

	j = &Job{DataPath: data, TestPath: filepath.Join(t.TempDir(), "none.jsonl"), Hyper: trainer.DefaultHyperParameters()}
	_, err = j.Run(context.Background())
	assert.ErrorContains(t, err, "test data: ")

	j = &Job{DataPath: filepath.Join(t.TempDir(), "none.jsonl"), Hyper: trainer.DefaultHyperParameters()}
	_, err = j.Run(context.Background())
	assert.Error(t, err)
}

// TestRunHoldout runs a whole job on a held-out split and checks the output
// folder and the report.
func TestRunHoldout(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	j := smallJob(t, writePairs(t, 8))
	j.EvalSplit = 0.25
	rep, err := j.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "holdout", rep.Split["mode"])
	assert.Contains(t, rep.Base, "ndcg@10")
	assert.Contains(t, rep.Tuned, "ndcg@10")
	assert.Len(t, rep.Pairs, 2, "the held-out pairs, at most three")
	assert.Positive(t, rep.Training.Steps)
	for _, f := range []string{"model.safetensors", "model.pt", "loss.svg", "loss.csv", "split/train.jsonl", "split/test.jsonl"} {
		assert.FileExists(t, filepath.Join(j.OutputDir, f))
	}
	b, err := os.ReadFile(filepath.Join(j.OutputDir, "eval.json"))
	require.NoError(t, err)
	var written Report
	require.NoError(t, json.Unmarshal(b, &written))
	assert.Equal(t, rep.Tuned, written.Tuned)
	assert.Equal(t, filepath.Join(j.OutputDir, "model.pt"), written.Output["torchscript"])

	// Per-question scores; two questions are too few for an interval.
	require.Len(t, written.Questions, 2)
	for _, q := range written.Questions {
		assert.Equal(t, fmt.Sprintf("How do I set up service %d on Debian?", q.ID-1), q.Question, "ids number the data file's pairs from 1")
		assert.Contains(t, q.Base, "ndcg@10")
		assert.Contains(t, q.Tuned, "ndcg@10")
		assert.Positive(t, q.BaseRank)
	}
	require.NotNil(t, written.Comparison)
	assert.Equal(t, VerdictRefused, written.Comparison.Verdict)
	assert.Nil(t, written.Comparison.Interval)
	assert.Equal(t, "no interval: the test split has 2 test questions; a paired interval needs at least 5 per split", written.Comparison.Summary)
}

// TestRunFolds runs two folds, then trains the exported model on all pairs.
func TestRunFolds(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	j := smallJob(t, writePairs(t, 10))
	j.Folds = 2
	rep, err := j.Run(context.Background())
	require.NoError(t, err)
	require.Len(t, rep.Folds, 2)
	// Five test questions per fold: each fold is tested, and the ten
	// pooled give the interval.
	for _, f := range rep.Folds {
		require.Len(t, f.Questions, 5)
		require.NotNil(t, f.PairedTest)
		assert.NotNil(t, f.PairedTest.PValue, "5 questions: exact or permutation p-value")
	}
	require.NotNil(t, rep.Comparison)
	require.NotNil(t, rep.Comparison.Interval)
	assert.Equal(t, 10, rep.Comparison.Questions)
	assert.Equal(t, 10000, rep.Comparison.Interval.Resamples)
	assert.LessOrEqual(t, rep.Comparison.Interval.Low, rep.Comparison.Gain)
	assert.Contains(t, []string{VerdictBetter, VerdictWorse, VerdictNone}, rep.Comparison.Verdict)
	var printed bytes.Buffer
	PrintReport(&printed, rep)
	assert.Contains(t, printed.String(), "verdict: "+rep.Comparison.Summary)
	assert.Equal(t, "kfold", rep.Split["mode"])
	assert.InDelta(t, (rep.Folds[0].Tuned["ndcg@10"]+rep.Folds[1].Tuned["ndcg@10"])/2, rep.Tuned["ndcg@10"], 1e-12)
	assert.Contains(t, rep.TunedStd, "ndcg@10")
	assert.Equal(t, 10, rep.Split["pairs"])
	assert.Positive(t, rep.Training.Steps, "the exported model trains on all pairs")
	for _, f := range []string{"folds/fold-1/test.jsonl", "folds/fold-2/train.jsonl", "model.pt", "eval.json"} {
		assert.FileExists(t, filepath.Join(j.OutputDir, f))
	}
}
