package trainer

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/torch"
)

func TestSplitValidation(t *testing.T) {
	pairs := smallPairs(120)
	hp := DefaultHyperParameters()
	folds, err := dataset.KFold(pairs, 5, hp.Seed)
	require.NoError(t, err)
	for i, f := range folds {
		train, val, err := SplitValidation(f.Train, hp)
		require.NoError(t, err)
		assert.Len(t, val, 19, "fold %d: round(96 × 0.2)", i+1)
		assert.Len(t, train, 77)
		again, valAgain, err := SplitValidation(f.Train, hp)
		require.NoError(t, err)
		assert.Equal(t, val, valAgain, "deterministic by seed")
		assert.Equal(t, train, again)
		inTest := map[[2]string]bool{}
		for _, p := range f.Test {
			inTest[pairKey(p)] = true
		}
		inVal := map[[2]string]bool{}
		for _, p := range val {
			assert.False(t, inTest[pairKey(p)], "fold %d: a validation pair is in the test fold", i+1)
			inVal[pairKey(p)] = true
		}
		for _, p := range train {
			assert.False(t, inTest[pairKey(p)] || inVal[pairKey(p)], "fold %d: a training pair is held out", i+1)
		}
	}
	other := hp
	other.Seed = 7
	_, v7, err := SplitValidation(folds[0].Train, other)
	require.NoError(t, err)
	_, v42, _ := SplitValidation(folds[0].Train, hp)
	assert.NotEqual(t, v42, v7, "another seed, another split")

	off := hp
	off.ValidationSplit = 0
	train, val, err := SplitValidation(pairs, off)
	require.NoError(t, err)
	assert.Equal(t, pairs, train)
	assert.Empty(t, val)

	half := hp
	half.ValidationSplit = 0.5
	_, _, err = SplitValidation(smallPairs(60), half)
	assert.EqualError(t, err, "validation split 0.5 leaves 30 training pairs, fewer than a batch of 32: lower --validation-split or --batch-size")

	// Train refuses the same split before it loads anything.
	_, err = Train(context.Background(), nil, smallPairs(60), half, Options{})
	assert.ErrorContains(t, err, "fewer than a batch of 32")
}

func pairKey(p dataset.Pair) [2]string { return [2]string{p.Anchor, p.Positive} }

func TestValidationSettings(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"", "ndcg@10"}, {"ndcg@10", "ndcg@10"}, {"NDCG@10", "ndcg@10"}, {"mrr@10", "mrr@10"},
		{"map@100", "map@100"}, {"accuracy@1", "accuracy@1"}, {"recall@10", "recall@10"},
		{"eval_debian_cosine_ndcg@10", "ndcg@10"},
	} {
		got, err := MetricKey(c.name)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, got, c.name)
	}
	for _, bad := range []string{"ndcg@5", "bleu", "map@10"} {
		_, err := MetricKey(bad)
		assert.ErrorContains(t, err, "unknown metric for best model", bad)
		assert.ErrorContains(t, err, "ndcg@10", bad)
	}
	for _, c := range []struct {
		s     string
		alpha float64
		auto  bool
		err   bool
	}{{"auto", 0, true, false}, {"off", 1, false, false}, {"", 1, false, false}, {"0", 0, false, false},
		{"0.3", 0.3, false, false}, {"1", 1, false, false}, {"1.5", 0, false, true}, {"-0.1", 0, false, true},
		{"NaN", 0, false, true}, {"sometimes", 0, false, true}} {
		a, auto, err := ParseWiseFT(c.s)
		if c.err {
			assert.ErrorContains(t, err, "want auto, off, or an α in [0, 1]", c.s)
			continue
		}
		require.NoError(t, err, c.s)
		assert.Equal(t, c.alpha, a, c.s)
		assert.Equal(t, c.auto, auto, c.s)
	}
	hp := DefaultHyperParameters()
	for _, c := range []struct {
		set  func(*HyperParameters)
		want string
	}{
		{func(h *HyperParameters) { h.MetricForBestModel = "bleu" }, "unknown metric for best model"},
		{func(h *HyperParameters) { h.WiseFT = "2" }, "wise-ft"},
		{func(h *HyperParameters) { h.ValidationSplit = 1 }, "validation split 1 is not in [0, 1)"},
		{func(h *HyperParameters) { h.ValidationSplit = -0.1 }, "validation split"},
		{func(h *HyperParameters) { h.EvalStrategy = "often" }, "unknown eval strategy"},
		{func(h *HyperParameters) { h.EvalStrategy = EvalSteps }, "--eval-steps"},
		{func(h *HyperParameters) { h.EvalStrategy = EvalNo }, "load best model at end needs evaluations"},
	} {
		h := hp
		c.set(&h)
		assert.ErrorContains(t, h.Validate(), c.want)
	}
}

// The default preset validates, keeps the best model and interpolates;
// the blog preset (the AWS sample) does none of it.
func TestPresetsValidation(t *testing.T) {
	d := DefaultHyperParameters()
	assert.Equal(t, 0.2, d.ValidationSplit)
	assert.Equal(t, EvalEpoch, d.EvalStrategy)
	assert.Equal(t, "ndcg@10", d.MetricForBestModel)
	assert.True(t, d.LoadBestModelAtEnd)
	assert.Equal(t, "auto", d.WiseFT)
	b := BlogPreset()
	assert.Zero(t, b.ValidationSplit)
	assert.Equal(t, EvalNo, b.EvalStrategy)
	assert.False(t, b.LoadBestModelAtEnd)
	assert.Equal(t, "off", b.WiseFT)
	assert.False(t, b.validating())
	require.NoError(t, d.Validate())
	require.NoError(t, b.Validate())
}

func TestInterpolate(t *testing.T) {
	f32 := func(v ...float32) hf.RawTensor {
		return hf.RawTensor{DType: hf.F32, Shape: []int64{int64(len(v))}, Data: f32Bytes(v)}
	}
	base := map[string]hf.RawTensor{"w": f32(0, 2, -4), "ids": {DType: hf.I64, Shape: []int64{1}, Data: make([]byte, 8)}}
	tuned := map[string]hf.RawTensor{"w": f32(10, 4, 4), "ids": {DType: hf.I64, Shape: []int64{1}, Data: make([]byte, 8)}}
	w, err := interpolate(base, tuned, 0)
	require.NoError(t, err)
	assert.Equal(t, base["w"].Data, w["w"].Data)
	w, err = interpolate(base, tuned, 1)
	require.NoError(t, err)
	assert.Equal(t, tuned["w"].Data, w["w"].Data)
	w, err = interpolate(base, tuned, 0.25)
	require.NoError(t, err)
	assert.Equal(t, f32Bytes([]float32{2.5, 2.5, -2}), w["w"].Data)
	_, err = interpolate(base, map[string]hf.RawTensor{"w": f32(1)}, 0.5)
	assert.ErrorContains(t, err, "wise-ft: w has 12 bytes in the base model and 4 tuned")
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}

// validationHyper is a short run whose learning rate is far too high, so
// that later epochs score worse than earlier ones.
// bestModelRun is TestLoadBestModelAtEnd's data and settings: 40 Debian
// FAQ pairs at lr 3e-4, batch 8, where a trained epoch scores best.
func bestModelRun(t *testing.T) ([]dataset.Pair, HyperParameters) {
	t.Helper()
	all, err := dataset.Load(filepath.Join("..", "testdata", "data", "debian-faq.jsonl"))
	require.NoError(t, err)
	hp := validationHyper()
	hp.LR, hp.BatchSize = 3e-4, 8
	return all[:40], hp
}

func validationHyper() HyperParameters {
	hp := DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength, hp.LR = 3, 4, 32, 3e-3
	hp.ValidationSplit, hp.WiseFT, hp.Refit = 0.25, "off", false
	return hp
}

// TestLoadBestModelAtEnd checkpoints every epoch and requires the kept
// weights to equal those of the best-scoring evaluation, with a validation
// score equal to that evaluation's. On 40 Debian FAQ pairs at lr 3e-4 the
// first epoch scores best (0.567 base, then 0.671, 0.604, 0.571).
func TestLoadBestModelAtEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs, hp := bestModelRun(t)
	hp.BestModelSE = 0 // the highest score, as transformers' Trainer picks it
	dir := t.TempDir()
	m := loadModel(t, hp.MaxSeqLength)
	base := weightsOf(t, m)
	res, err := Train(ctx, m, pairs, hp, Options{CheckpointDir: dir, MinCheckpointInterval: -1, KeepCheckpoints: 10})
	require.NoError(t, err)
	v := res.Validation
	require.NotNil(t, v)
	assert.Equal(t, 10, v.Pairs)
	assert.Equal(t, 30, v.TrainPairs)
	require.Len(t, v.Evaluations, 4, "the base and three epochs")
	assert.Equal(t, 0, v.Evaluations[0].Step)
	best := v.Evaluations[0]
	for _, e := range v.Evaluations {
		if e.Metrics["ndcg@10"] > best.Metrics["ndcg@10"] {
			best = e
		}
	}
	assert.Equal(t, best.Step, v.BestStep)
	assert.Equal(t, best.Metrics["ndcg@10"], v.BestScore)
	assert.Less(t, v.Evaluations[3].Metrics["ndcg@10"], v.BestScore, "lr %g: the last epoch must be worse than the best for this test to prove anything", hp.LR)
	assert.True(t, v.LoadedBest)
	assert.Positive(t, best.Step, "a trained step must win for this test to restore a checkpoint")

	want := base
	if best.Step > 0 {
		var err error
		want, _, err = hf.ReadSafetensors(filepath.Join(dir, checkpointName(best.Step), "model.safetensors"))
		require.NoError(t, err)
	}
	got := weightsOf(t, m)
	for name, w := range want {
		if g, ok := got[name]; ok {
			assert.Equal(t, w.Data, g.Data, "%s is not the best step's", name)
		}
	}
	val, err := evaluateTask(ctx, m, ValidationTask(pairs, validationPairs(t, pairs, hp)))
	require.NoError(t, err)
	assert.Equal(t, v.BestScore, val["ndcg@10"])
	assert.Equal(t, best.Step == 0, v.BaseWon)
	assert.Zero(t, torch.Leaked())
}

func validationPairs(t *testing.T, pairs []dataset.Pair, hp HyperParameters) []dataset.Pair {
	_, val, err := SplitValidation(pairs, hp)
	require.NoError(t, err)
	return val
}

// TestWiseFTAlphaZeroIsBase: α = 0 gives exactly the base model's
// embeddings, and the report says the base model is the output.
func TestWiseFTAlphaZeroIsBase(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs := smallPairs(16)
	texts := []string{pairs[0].Anchor, pairs[5].Positive, "an unrelated sentence"}
	hp := validationHyper()
	hp.Epochs, hp.LoadBestModelAtEnd, hp.WiseFT = 1, false, "0"
	m := loadModel(t, hp.MaxSeqLength)
	want, err := m.Encode(ctx, texts, 0)
	require.NoError(t, err)
	res, err := Train(ctx, m, pairs, hp, Options{})
	require.NoError(t, err)
	got, err := m.Encode(ctx, texts, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got, "α = 0 must be the base model, bit for bit")
	require.NotNil(t, res.Validation)
	assert.True(t, res.Validation.BaseWon)
	assert.Equal(t, 0.0, res.Validation.Alpha)
	assert.Contains(t, res.Validation.Summary(), BaseWonMessage)
}

// TestWiseFTAuto scores α = 0, 0.1, …, 1 and, with BestModelSE 0, keeps
// the first best.
func TestWiseFTAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs := smallPairs(16)
	hp := validationHyper()
	hp.Epochs, hp.LR, hp.WiseFT = 2, 1e-4, "auto"
	hp.BestModelSE = 0 // the first α of the highest score
	m := loadModel(t, hp.MaxSeqLength)
	res, err := Train(ctx, m, pairs, hp, Options{})
	require.NoError(t, err)
	v := res.Validation
	require.NotNil(t, v)
	require.Len(t, v.AlphaScores, 11)
	bestAlpha, bestScore := 0.0, math.Inf(-1)
	for i, s := range v.AlphaScores {
		assert.InDelta(t, float64(i)/10, s.Alpha, 1e-12)
		if s.Score > bestScore {
			bestAlpha, bestScore = s.Alpha, s.Score
		}
	}
	assert.Equal(t, bestAlpha, v.Alpha)
	assert.Equal(t, bestScore, v.Score)
	assert.Equal(t, v.BaseScore, v.AlphaScores[0].Score)
	val, err := evaluateTask(ctx, m, ValidationTask(pairs, validationPairs(t, pairs, hp)))
	require.NoError(t, err)
	assert.InDelta(t, v.Score, val["ndcg@10"], 1e-9, "the output weights score what was chosen")
}

// TestResumeKeepsValidation interrupts a validating run after its first
// epoch and resumes it: the evaluations, the best step and the final
// weights are an uninterrupted run's.
func TestResumeKeepsValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three times")
	}
	ctx := context.Background()
	pairs := smallPairs(16)
	hp := validationHyper()
	hp.Epochs = 2
	full := loadModel(t, hp.MaxSeqLength)
	want, err := Train(ctx, full, pairs, hp, Options{})
	require.NoError(t, err)

	dir := t.TempDir()
	stopCtx, stop := context.WithCancel(ctx)
	_, err = Train(stopCtx, loadModel(t, hp.MaxSeqLength), pairs, hp, Options{CheckpointDir: dir, MinCheckpointInterval: -1,
		OnStep: func(s StepLog) {
			if s.Step == 4 { // one step into the second epoch
				stop()
			}
		}})
	require.ErrorIs(t, err, ErrInterrupted)
	second := loadModel(t, hp.MaxSeqLength)
	got, err := Train(ctx, second, pairs, hp, Options{CheckpointDir: dir, Resume: true})
	require.NoError(t, err)
	require.NotEmpty(t, got.ResumedFrom)
	assert.Equal(t, want.Validation.BestStep, got.Validation.BestStep)
	assert.Equal(t, len(want.Validation.Evaluations), len(got.Validation.Evaluations))
	for i := range want.Validation.Evaluations {
		assert.InDelta(t, want.Validation.Evaluations[i].Metrics["ndcg@10"], got.Validation.Evaluations[i].Metrics["ndcg@10"], 1e-9)
	}
	a, b := weightsOf(t, full), weightsOf(t, second)
	for name, w := range a {
		assert.Equal(t, w.Data, b[name].Data, "%s differs after resume", name)
	}
}

// TestWiseFTFixedWithoutValidation: a fixed α needs no validation split;
// α = 0 is the base model, bit for bit.
func TestWiseFTFixedWithoutValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs := smallPairs(12)
	hp := validationHyper()
	hp.Epochs, hp.ValidationSplit, hp.LoadBestModelAtEnd, hp.WiseFT = 1, 0, false, "0"
	m := loadModel(t, hp.MaxSeqLength)
	want, err := m.Encode(ctx, []string{pairs[0].Anchor, pairs[3].Positive}, 0)
	require.NoError(t, err)
	res, err := Train(ctx, m, pairs, hp, Options{})
	require.NoError(t, err)
	assert.Nil(t, res.Validation)
	got, err := m.Encode(ctx, []string{pairs[0].Anchor, pairs[3].Positive}, 0)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// TestRefit: after the validation run chose the epoch and α, the output is
// a second run on every pair, stopped at that epoch of the same schedule.
func TestRefit(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs, hp := bestModelRun(t)
	hp.WiseFT, hp.Refit = "off", true
	m := loadModel(t, hp.MaxSeqLength)
	res, err := Train(ctx, m, pairs, hp, Options{})
	require.NoError(t, err)
	v := res.Validation
	require.NotNil(t, v)
	assert.Equal(t, 4, v.BestStep, "as in TestLoadBestModelAtEnd")
	assert.Equal(t, 40, v.RefitPairs)
	assert.Equal(t, 1, v.RefitEpochs)
	assert.Equal(t, 12+5, res.Steps, "3 epochs of 4 steps on 30 pairs, then 1 epoch of 5 on 40")
	assert.Contains(t, v.Summary(), "refit on all 40 training pairs for 1 epochs")

	// The same refit by hand: 1 epoch of a 3-epoch schedule on all 40 pairs.
	hand := loadModel(t, hp.MaxSeqLength)
	plain := hp
	plain.ValidationSplit, plain.Refit, plain.LoadBestModelAtEnd = 0, false, false
	_, err = Train(ctx, hand, pairs, plain, Options{stopAfterEpoch: 1})
	require.NoError(t, err)
	a, b := weightsOf(t, m), weightsOf(t, hand)
	for name, w := range a {
		assert.Equal(t, w.Data, b[name].Data, "%s", name)
	}
}

// TestRefitMaxPairs: a training set larger than RefitMaxPairs is not
// refitted; the output is the validation run's.
func TestRefitMaxPairs(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	pairs := smallPairs(16)
	hp := validationHyper()
	hp.Epochs, hp.Refit, hp.RefitMaxPairs = 1, true, 15
	m := loadModel(t, hp.MaxSeqLength)
	res, err := Train(context.Background(), m, pairs, hp, Options{})
	require.NoError(t, err)
	require.NotNil(t, res.Validation)
	assert.Zero(t, res.Validation.RefitPairs)
	assert.Equal(t, 3, res.Steps, "one epoch of 12 pairs at batch 4, no refit")
	assert.NotContains(t, res.Validation.Summary(), "refit")
	hp.RefitMaxPairs = -1
	assert.ErrorContains(t, hp.Validate(), "refit max pairs must not be negative")
}
