package finetune

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
)

func TestFoldTrainScopes(t *testing.T) {
	test := []dataset.Pair{{Anchor: "How do I upgrade Debian?", Positive: "Run apt full-upgrade. Then reboot into the new kernel."}}
	gen := []dataset.Pair{
		{Anchor: "What does apt full-upgrade do?", Positive: "Run apt full-upgrade. Then reboot into the new kernel."},
		{Anchor: "When should I reboot?", Positive: "Then reboot into the new kernel."}, // a chunk of the held-out answer
		{Anchor: "Where is the sources list?", Positive: "The sources are listed in /etc/apt/sources.list."},
	}
	all, dropped, err := foldTrain(gen, test, TrainScopeAll)
	require.NoError(t, err)
	assert.Equal(t, gen, all, "all: every generated pair trains; only the question is held out")
	assert.Zero(t, dropped)

	strict, dropped, err := foldTrain(gen, test, TrainScopeFold)
	require.NoError(t, err)
	assert.Equal(t, gen[2:], strict, "fold: pairs of the held-out answer and of its chunks are left out")
	assert.Equal(t, 2, dropped)

	_, _, err = foldTrain(gen, test, "some")
	assert.ErrorContains(t, err, `want all or fold, got "some"`)
}

// TestFoldTrainRefusesHeldOutQuestions: a held-out question in the
// training pairs, even re-cased and re-punctuated, stops the run.
func TestFoldTrainRefusesHeldOutQuestions(t *testing.T) {
	test := []dataset.Pair{{Anchor: "How do I upgrade Debian?", Positive: "Run apt full-upgrade."}}
	for _, scope := range []string{TrainScopeAll, TrainScopeFold} {
		_, _, err := foldTrain([]dataset.Pair{
			{Anchor: "Where is the sources list?", Positive: "In /etc/apt."},
			{Anchor: "  how do I upgrade  debian ", Positive: "Another text entirely."},
		}, test, scope)
		assert.ErrorContains(t, err, `1 training pair(s) ask a held-out question, e.g. "  how do I upgrade  debian "`, scope)
	}
	assert.Equal(t, "how do i upgrade debian", questionKey(" How do I upgrade Debian?! "))
}

// TestRunTrainDataBadInput: separate training data needs folds, and a
// file that holds the held-out questions (the real pairs themselves) is
// refused before any training.
func TestRunTrainDataBadInput(t *testing.T) {
	data := writePairs(t, 10)
	j := smallJob(t, data)
	j.TrainPath = data
	_, err := j.Run(context.Background())
	assert.ErrorContains(t, err, "separate training data needs folds")

	j = smallJob(t, data)
	j.Folds, j.TrainPath = 2, data
	_, err = j.Run(context.Background())
	assert.ErrorContains(t, err, "fold 1: 5 training pair(s) ask a held-out question")

	j = smallJob(t, data)
	j.Folds, j.TrainPath = 2, filepath.Join(t.TempDir(), "none.jsonl")
	_, err = j.Run(context.Background())
	assert.ErrorContains(t, err, "training data: ")
}

// writeGenerated writes pairs whose anchors differ from writePairs' but
// whose positives are its answers: questions generated from the documents.
func writeGenerated(t *testing.T, n int) string {
	t.Helper()
	var pairs []dataset.Pair
	for i := range n {
		// writePairs' answer i.
		p := dataset.Pair{Positive: fmt.Sprintf("Service %d is configured under /etc/service-%d; restart it afterwards.", i, i)}
		for _, q := range []string{"Where is the configuration of service %d?", "What do I restart after configuring service %d?"} {
			p.Anchor = fmt.Sprintf(q, i)
			pairs = append(pairs, p)
		}
	}
	path := filepath.Join(t.TempDir(), "generated.jsonl")
	var b bytes.Buffer
	require.NoError(t, dataset.Write(&b, pairs, dataset.FormatJSONL))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

// TestRunFoldsTrainData: each fold trains on the generated pairs (all of
// them, or those not of its held-out answers) and is tested on its real
// questions against every real answer, as without --train-data.
func TestRunFoldsTrainData(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	data, gen := writePairs(t, 10), writeGenerated(t, 10)
	plain := smallJob(t, data)
	plain.Folds = 2
	want, err := plain.Run(context.Background())
	require.NoError(t, err)

	for _, scope := range []string{TrainScopeAll, TrainScopeFold} {
		j := smallJob(t, data)
		j.Folds, j.TrainPath, j.TrainScope = 2, gen, scope
		rep, err := j.Run(context.Background())
		require.NoError(t, err, scope)
		assert.Equal(t, gen, rep.Split["train_path"])
		assert.Equal(t, 20, rep.Split["train_pairs"])
		assert.Equal(t, scope, rep.Split["train_scope"])
		require.Len(t, rep.Folds, 2)
		for i, f := range rep.Folds {
			// The same held-out questions in the same order, the same base scores.
			require.Len(t, f.Questions, 5)
			for q := range f.Questions {
				assert.Equal(t, want.Folds[i].Questions[q].Question, f.Questions[q].Question)
				assert.Equal(t, want.Folds[i].Questions[q].Base, f.Questions[q].Base)
			}
			if scope == TrainScopeAll {
				assert.Equal(t, 20, f.Train)
				assert.Zero(t, f.TrainDropped)
			} else {
				assert.Equal(t, 10, f.Train, "the 5 held-out answers' 10 generated pairs are left out")
				assert.Equal(t, 10, f.TrainDropped)
			}
		}
		assert.Greater(t, rep.Training.Pairs, want.Training.Pairs, "the exported model trains on the 20 generated pairs, not the 10 real ones")
		train, err := dataset.Load(filepath.Join(j.OutputDir, "folds", "fold-1", "train.jsonl"))
		require.NoError(t, err)
		assert.Len(t, train, rep.Folds[0].Train)
	}
}

// TestRunFoldsTrainDataAllTrainsOnce: with scope all every fold and the
// exported model train on the same pairs, so the folds' model is trained
// once and exported; it is byte for byte the model a run without folds
// trains on those pairs with the same settings.
func TestRunFoldsTrainDataAllTrainsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	data, gen := writePairs(t, 12), writeGenerated(t, 12)
	j := smallJob(t, data)
	j.Folds, j.TrainPath, j.TrainScope = 3, gen, TrainScopeAll
	rep, err := j.Run(context.Background())
	require.NoError(t, err)
	require.Len(t, rep.Folds, 3)
	assert.Equal(t, 24, rep.Training.Pairs/j.Hyper.Epochs)

	alone := smallJob(t, gen)
	_, err = alone.Run(context.Background())
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(j.OutputDir, "model.safetensors"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(alone.OutputDir, "model.safetensors"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the exported model is the one training on the generated pairs gives")
}
