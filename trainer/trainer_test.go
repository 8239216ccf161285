package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

func modelDir(t testing.TB) string { return testmodel.Dir(t) }

func loadModel(t testing.TB, maxSeq int) *minilm.Model {
	t.Helper()
	m, err := minilm.Load(context.Background(), modelDir(t), minilm.Options{MaxSeqLength: maxSeq})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return m
}

func TestLinearSchedule(t *testing.T) {
	s := LinearSchedule{Base: 1, Warmup: 4, Total: 12}
	want := []float64{0, 0.25, 0.5, 0.75, 1, 7.0 / 8, 6.0 / 8, 5.0 / 8, 4.0 / 8, 3.0 / 8, 2.0 / 8, 1.0 / 8, 0}
	for step, w := range want {
		assert.InDelta(t, w, s.LR(step), 1e-12, "step %d", step)
	}
	// The blog preset: warmup longer than the run, so lr never peaks.
	blog := LinearSchedule{Base: 2e-5, Warmup: 10000, Total: 1100}
	assert.InDelta(t, 2e-5*1099/10000, blog.LR(1099), 1e-15)
	assert.Equal(t, 1, DefaultHyperParameters().warmup(10))
	assert.Equal(t, 2, DefaultHyperParameters().warmup(11), "ceil, as transformers' get_warmup_steps")
}

func TestNoDuplicatesBatches(t *testing.T) {
	pairs := []dataset.Pair{
		{Anchor: "q1", Positive: "same answer"}, {Anchor: "q2", Positive: "same answer"},
		{Anchor: "q3", Positive: "a3"}, {Anchor: "q4", Positive: "a4"}, {Anchor: "q5", Positive: "a5"},
	}
	order := []int{0, 1, 2, 3, 4}
	batches := Batches(pairs, order, 2, true)
	assert.Equal(t, [][]int{{0, 2}, {1, 3}}, batches, "pair 1 waits for the next batch; the lone last pair is dropped")
	for _, b := range Batches(pairs, epochOrder(len(pairs), 7, 0), 4, true) {
		seen := map[string]bool{}
		for _, i := range b {
			assert.False(t, seen[pairs[i].Positive], "duplicate text in a batch")
			seen[pairs[i].Positive] = true
		}
	}
	assert.Equal(t, [][]int{{0, 1}, {2, 3}}, Batches(pairs, order, 2, false))
	assert.Equal(t, epochOrder(50, 1, 3), epochOrder(50, 1, 3))
	assert.NotEqual(t, epochOrder(50, 1, 3), epochOrder(50, 1, 4))
}

type lossGolden struct {
	Batch struct {
		Anchors   []string `json:"anchors"`
		Positives []string `json:"positives"`
		Negatives []string `json:"negatives"`
	} `json:"batch"`
	MaxSeqLength int                 `json:"max_seq_length"`
	Cases        map[string]lossCase `json:"cases"`
}

type lossCase struct {
	Loss      float64 `json:"loss"`
	GradNorm  float64 `json:"grad_norm"`
	Negatives bool    `json:"negatives"`
	// The loss's keyword arguments in sentence-transformers.
	Kwargs struct {
		Directions       []string `json:"directions"`
		PartitionMode    string   `json:"partition_mode"`
		HardnessMode     string   `json:"hardness_mode"`
		HardnessStrength float64  `json:"hardness_strength"`
	} `json:"kwargs"`
	// MatryoshkaLoss's, in matryoshka_loss.json.
	Dims    []int     `json:"matryoshka_dims"`
	Weights []float64 `json:"matryoshka_weights"`
}

// readLossGolden reads a first-step golden under testdata/golden.
func readLossGolden(t *testing.T, name string) lossGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden", name))
	require.NoError(t, err)
	var g lossGolden
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	return g
}

// goldenFirstStep runs one step of hp, with the case's loss arguments, on
// the golden batch with dropout off, and returns the loss and gradient norm.
func goldenFirstStep(t *testing.T, g lossGolden, want lossCase, hp HyperParameters) (loss, norm float64) {
	t.Helper()
	m := loadModel(t, g.MaxSeqLength)
	var pairs []dataset.Pair
	for i := range g.Batch.Anchors {
		p := dataset.Pair{Anchor: g.Batch.Anchors[i], Positive: g.Batch.Positives[i]}
		if want.Negatives {
			p.Negatives = []string{g.Batch.Negatives[i]}
		}
		pairs = append(pairs, p)
	}
	hp.Directions = strings.Join(want.Kwargs.Directions, ",")
	hp.PartitionMode = want.Kwargs.PartitionMode
	hp.HardnessMode = want.Kwargs.HardnessMode
	hp.HardnessStrength = want.Kwargs.HardnessStrength
	require.NoError(t, hp.Validate())
	r, err := newRun(context.Background(), m, pairs, hp)
	require.NoError(t, err)
	defer r.close()
	require.NoError(t, m.Worker().Do(context.Background(), func() error { return m.Module().Train(false) }))
	loss, norm, err = r.step([]int{0, 1, 2, 3, 4, 5, 6, 7}, 0)
	require.NoError(t, err)
	return loss, norm
}

// TestFirstStepMatchesSentenceTransformers compares the loss and gradient
// norm of one step with sentence-transformers' on the same weights and
// batch (dropout off on both sides, so no random numbers are involved).
func TestFirstStepMatchesSentenceTransformers(t *testing.T) {
	g := readLossGolden(t, "loss.json")
	for name, want := range g.Cases {
		t.Run(name, func(t *testing.T) {
			hp := DefaultHyperParameters()
			hp.Symmetric = name == "symmetric" // the deprecated MultipleNegativesSymmetricRankingLoss class
			loss, norm := goldenFirstStep(t, g, want, hp)
			assert.InDelta(t, want.Loss, loss, 1e-4, "loss")
			assert.InDelta(t, want.GradNorm, norm, 1e-4*max(1, want.GradNorm), "grad norm")
		})
	}
}

func smallPairs(n int) []dataset.Pair {
	topics := []string{"apt", "dpkg", "kernel", "mirrors", "security", "releases", "bugs", "packages",
		"licenses", "installer", "desktop", "networking", "printing", "sound", "backups", "users"}
	var out []dataset.Pair
	for i := 0; i < n; i++ {
		tp := topics[i%len(topics)]
		out = append(out, dataset.Pair{
			Anchor:   fmt.Sprintf("How do I configure %s on Debian (case %d)?", tp, i),
			Positive: fmt.Sprintf("To configure %s, edit the files under /etc and restart the service; case %d.", tp, i),
		})
	}
	return out
}

func weightsOf(t *testing.T, m *minilm.Model) map[string]hf.RawTensor {
	w, err := m.Weights(context.Background())
	require.NoError(t, err)
	return w
}

// TestResumeIsExact interrupts a run, resumes it from its checkpoint in a
// fresh model, and requires the final weights to equal an uninterrupted run's.
func TestResumeIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three times")
	}
	ctx := context.Background()
	pairs := smallPairs(12)
	hp := DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength, hp.LR = 2, 4, 32, 1e-4
	hp.ValidationSplit = 0 // TestResumeKeepsValidation resumes with one

	full := loadModel(t, hp.MaxSeqLength)
	res, err := Train(ctx, full, pairs, hp, Options{})
	require.NoError(t, err)
	require.Equal(t, 6, res.Steps)
	want := weightsOf(t, full)

	dir := t.TempDir()
	first := loadModel(t, hp.MaxSeqLength)
	stopCtx, stop := context.WithCancel(ctx)
	_, err = Train(stopCtx, first, pairs, hp, Options{CheckpointDir: dir, OnStep: func(s StepLog) {
		if s.Step == 4 { // mid-epoch: exercises the data position
			stop()
		}
	}})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrInterrupted) && errors.Is(err, context.Canceled), "%v", err)
	latest, err := latestCheckpoint(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, checkpointName(4)), latest)

	second := loadModel(t, hp.MaxSeqLength)
	res2, err := Train(ctx, second, pairs, hp, Options{CheckpointDir: dir, Resume: true})
	require.NoError(t, err)
	assert.Equal(t, latest, res2.ResumedFrom)
	assert.Equal(t, 6, res2.Steps)
	got := weightsOf(t, second)
	require.Equal(t, len(want), len(got))
	for name, w := range want {
		assert.Equal(t, w.Data, got[name].Data, "%s differs after resume", name)
	}
	assert.NotEqual(t, want["encoder.layer.0.attention.self.query.weight"].Data,
		weightsOf(t, loadModel(t, hp.MaxSeqLength))["encoder.layer.0.attention.self.query.weight"].Data,
		"training changed the weights")

	// A checkpoint for other data is refused, not silently mixed in.
	third := loadModel(t, hp.MaxSeqLength)
	_, err = Train(ctx, third, smallPairs(13), hp, Options{CheckpointDir: dir, Resume: true})
	assert.ErrorContains(t, err, "different training data")
	assert.Zero(t, torch.Leaked())
}

func TestTrainRejectsBadSettings(t *testing.T) {
	m := loadModel(t, 16)
	ctx := context.Background()
	hp := DefaultHyperParameters()
	hp.ValidationSplit = 0 // TestSplitValidation covers the split's errors
	_, err := Train(ctx, m, smallPairs(1), hp, Options{})
	assert.ErrorContains(t, err, "at least 2 pairs")
	bad := hp
	bad.BatchSize = 1
	_, err = Train(ctx, m, smallPairs(4), bad, Options{})
	assert.ErrorContains(t, err, "batch size")
	ragged := smallPairs(4)
	ragged[1].Negatives = []string{"x"}
	_, err = Train(ctx, m, ragged, hp, Options{})
	assert.ErrorContains(t, err, "hard negatives")
	invalid := smallPairs(4)
	invalid[2].Positive = "bad \xff"
	_, err = Train(ctx, m, invalid, hp, Options{})
	assert.ErrorContains(t, err, "pair 2")

	// A batch larger than the data is one batch of everything.
	big := hp
	big.BatchSize, big.Epochs = 64, 1
	res, err := Train(ctx, m, smallPairs(5), big, Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Steps)
}
