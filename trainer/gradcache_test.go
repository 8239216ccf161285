package trainer

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// pairsWithNegatives is smallPairs with, when negatives, one hard-negative
// column: another pair's answer.
func pairsWithNegatives(n int, negatives bool) []dataset.Pair {
	ps := smallPairs(n)
	if negatives {
		for i := range ps {
			ps[i].Negatives = []string{"Unrelated: " + ps[(i+5)%n].Positive}
		}
	}
	return ps
}

// stepOutcome is one optimizer step's loss, gradient norm and the weights after it.
type stepOutcome struct {
	loss, norm float64
	weights    map[string]hf.RawTensor
}

// oneStep takes one step of hp over all of pairs on a fresh model, with
// dropout on or off, through step (nil: the run's own step).
func oneStep(t *testing.T, model string, pairs []dataset.Pair, hp HyperParameters, dropout bool,
	step func(r *run, batch []int, lr float64) (float64, float64, error)) stepOutcome {
	t.Helper()
	ctx := context.Background()
	m, err := minilm.Load(ctx, model, minilm.Options{MaxSeqLength: hp.MaxSeqLength})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, hp.Validate())
	r, err := newRun(ctx, m, pairs, hp)
	require.NoError(t, err)
	defer r.close()
	if !dropout {
		require.NoError(t, m.Worker().Do(ctx, func() error { return m.Module().Train(false) }))
	}
	if step == nil {
		step = (*run).step
	}
	batch := make([]int, len(pairs))
	for i := range batch {
		batch[i] = i
	}
	var out stepOutcome
	out.loss, out.norm, err = step(r, batch, 2e-5)
	require.NoError(t, err)
	out.weights = weightsOf(t, m)
	return out
}

// maxWeightDelta is the largest |a − b| over every weight.
func maxWeightDelta(t *testing.T, a, b map[string]hf.RawTensor) float64 {
	t.Helper()
	require.Equal(t, len(a), len(b))
	d := 0.0
	for name, wa := range a {
		fa, fb := f32s(wa.Data), f32s(b[name].Data)
		require.Equal(t, len(fa), len(fb), name)
		for i := range fa {
			d = math.Max(d, math.Abs(float64(fa[i])-float64(fb[i])))
		}
	}
	return d
}

func assertSameStep(t *testing.T, plain, cached stepOutcome) {
	t.Helper()
	dw := maxWeightDelta(t, plain.weights, cached.weights)
	t.Logf("loss %.9f vs %.9f (|Δ| %.2g), grad norm %.6f vs %.6f, weights max |Δ| %.2g",
		plain.loss, cached.loss, math.Abs(plain.loss-cached.loss), plain.norm, cached.norm, dw)
	assert.InDelta(t, plain.loss, cached.loss, 1e-6, "loss")
	assert.InDelta(t, plain.norm, cached.norm, 1e-4*plain.norm, "grad norm")
	assert.LessOrEqual(t, dw, 1e-5, "updated weights")
}

func cachedTestHyper(batch, mini int) HyperParameters {
	hp := DefaultHyperParameters()
	hp.BatchSize, hp.MaxSeqLength, hp.ValidationSplit = batch, 32, 0
	hp.MiniBatchSize = mini
	return hp
}

// TestCachedStepEqualsPlainStep: with dropout off, a cached step at batch 64
// and mini-batch 8 is the plain step at batch 64, for MNRL and its variants.
func TestCachedStepEqualsPlainStep(t *testing.T) {
	cases := []struct {
		name      string
		negatives bool
		set       func(*HyperParameters)
	}{
		{"mnrl", false, func(*HyperParameters) {}},
		{"hard_negatives", true, func(*HyperParameters) {}},
		{"symmetric", false, func(h *HyperParameters) { h.Symmetric = true }},
		{"gte_hardness", true, func(h *HyperParameters) {
			h.Directions = strings.Join(allDirections, ",")
			h.PartitionMode, h.HardnessMode, h.HardnessStrength = "joint", "all_negatives", 5
		}},
		{"matryoshka", true, func(h *HyperParameters) { h.MatryoshkaDims = "384,128,64" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			batch := 64
			if c.name != "mnrl" && c.name != "matryoshka" {
				batch = 32 // the variants at a smaller batch, to keep the suite short
			}
			pairs := pairsWithNegatives(batch, c.negatives)
			plainHP, cachedHP := cachedTestHyper(batch, 0), cachedTestHyper(batch, 8)
			c.set(&plainHP)
			c.set(&cachedHP)
			plain := oneStep(t, modelDir(t), pairs, plainHP, false, nil)
			cached := oneStep(t, modelDir(t), pairs, cachedHP, false, nil)
			assertSameStep(t, plain, cached)
		})
	}
	assert.Zero(t, torch.Leaked())
}

// stepInMiniBatches is a plain step (one graph, one backward) that embeds
// the batch in the cached step's mini-batches and order, so that dropout
// draws the same masks as the cached step's first pass.
func stepInMiniBatches(r *run, batch []int, lr float64) (loss, norm float64, err error) {
	anchors, docs := r.batchTexts(batch)
	err = r.onWorker(func(s *torch.Scope) error {
		chunks := chunkRows(anchors, r.hp.MiniBatchSize, false, 0)
		for col := 0; col < len(docs); col += len(anchors) {
			chunks = append(chunks, chunkRows(docs[col:col+len(anchors)], r.hp.MiniBatchSize, true, col)...)
		}
		var as, ds []*torch.Tensor
		for _, ch := range chunks {
			e := r.embed(s, ch.seqs)
			if ch.doc {
				ds = append(ds, e)
			} else {
				as = append(as, e)
			}
		}
		a, d := catRows(s, as), catRows(s, ds)
		if err := s.Err(); err != nil {
			return err
		}
		l, err := r.loss.Loss(s, a, d)
		if err != nil {
			return err
		}
		if loss, err = l.Item(); err != nil {
			return err
		}
		if err := l.Backward(); err != nil {
			return err
		}
		norm, err = r.clipAndStep(lr)
		return err
	})
	return loss, norm, err
}

// TestCachedStepReplaysDropout: with dropout on, the cached step's second
// pass draws the first pass's masks, so it equals one graph over the same
// mini-batches drawn in the same order.
func TestCachedStepReplaysDropout(t *testing.T) {
	pairs := pairsWithNegatives(64, true)
	hp := cachedTestHyper(64, 8)
	reference := oneStep(t, modelDir(t), pairs, hp, true, stepInMiniBatches)
	cached := oneStep(t, modelDir(t), pairs, hp, true, nil)
	assertSameStep(t, reference, cached)
	// Dropout is on: the whole batch in one pass draws other masks.
	plain := oneStep(t, modelDir(t), pairs, cachedTestHyper(64, 0), true, nil)
	assert.Greater(t, math.Abs(plain.loss-cached.loss), 1e-5, "dropout changed nothing")
	assert.Zero(t, torch.Leaked())
}

// TestCachedLossMatchesSentenceTransformers compares the first step with
// sentence-transformers' CachedMultipleNegativesRankingLoss at the same
// batch and mini-batch, dropout off.
func TestCachedLossMatchesSentenceTransformers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "cached_loss.json"))
	require.NoError(t, err)
	var g struct {
		lossGolden
		BatchSize     int `json:"batch_size"`
		MiniBatchSize int `json:"mini_batch_size"`
	}
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	for name, want := range g.Cases {
		t.Run(name, func(t *testing.T) {
			var pairs []dataset.Pair
			for i := range g.Batch.Anchors {
				p := dataset.Pair{Anchor: g.Batch.Anchors[i], Positive: g.Batch.Positives[i]}
				if want.Negatives {
					p.Negatives = []string{g.Batch.Negatives[i]}
				}
				pairs = append(pairs, p)
			}
			require.Len(t, pairs, g.BatchSize)
			hp := DefaultHyperParameters()
			hp.BatchSize, hp.MiniBatchSize, hp.MaxSeqLength, hp.ValidationSplit = g.BatchSize, g.MiniBatchSize, g.MaxSeqLength, 0
			hp.Directions = strings.Join(want.Kwargs.Directions, ",")
			hp.PartitionMode = want.Kwargs.PartitionMode
			hp.HardnessMode = want.Kwargs.HardnessMode
			hp.HardnessStrength = want.Kwargs.HardnessStrength
			var dims []string
			for _, d := range want.Dims {
				dims = append(dims, strconv.Itoa(d))
			}
			hp.MatryoshkaDims = strings.Join(dims, ",")
			got := oneStep(t, modelDir(t), pairs, hp, false, nil)
			t.Logf("loss %.6f (ST %.6f), grad norm %.6f (ST %.6f)", got.loss, want.Loss, got.norm, want.GradNorm)
			assert.InDelta(t, want.Loss, got.loss, 1e-4, "loss")
			assert.InDelta(t, want.GradNorm, got.norm, 1e-4*max(1, want.GradNorm), "grad norm")
		})
	}
}

func TestMiniBatchSizeRejected(t *testing.T) {
	hp := DefaultHyperParameters()
	hp.MiniBatchSize = -1
	assert.ErrorContains(t, hp.Validate(), "mini batch size must be at least 1")
	hp.MiniBatchSize = hp.BatchSize + 1
	assert.ErrorContains(t, hp.Validate(), "larger than the batch size")
	hp.MiniBatchSize = hp.BatchSize
	assert.NoError(t, hp.Validate())
}

// TestResumeCachedIsExact: a cached run with dropout, interrupted and
// resumed, ends with the weights of an uninterrupted one.
func TestResumeCachedIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice and a half")
	}
	ctx := context.Background()
	pairs := smallPairs(12)
	hp := cachedTestHyper(4, 2)
	hp.Epochs, hp.LR = 2, 1e-4
	full := loadModel(t, hp.MaxSeqLength)
	_, err := Train(ctx, full, pairs, hp, Options{})
	require.NoError(t, err)
	want := weightsOf(t, full)

	dir := t.TempDir()
	first := loadModel(t, hp.MaxSeqLength)
	stopCtx, stop := context.WithCancel(ctx)
	_, err = Train(stopCtx, first, pairs, hp, Options{CheckpointDir: dir, OnStep: func(s StepLog) {
		if s.Step == 4 {
			stop()
		}
	}})
	require.ErrorIs(t, err, ErrInterrupted)
	second := loadModel(t, hp.MaxSeqLength)
	res, err := Train(ctx, second, pairs, hp, Options{CheckpointDir: dir, Resume: true})
	require.NoError(t, err)
	require.NotEmpty(t, res.ResumedFrom)
	got := weightsOf(t, second)
	for name, w := range want {
		assert.Equal(t, w.Data, got[name].Data, "%s differs after resume", name)
	}
	// A checkpoint of the plain run is not resumed by a cached one.
	plain := hp
	plain.MiniBatchSize = 0
	_, err = Train(ctx, loadModel(t, hp.MaxSeqLength), pairs, plain, Options{CheckpointDir: dir, Resume: true})
	assert.ErrorContains(t, err, "other hyperparameters")
}

// TestCachedDistributedWorker is one process of TestCachedDistributedEquivalence,
// run as a child of the test binary; it does nothing in a normal test run.
func TestCachedDistributedWorker(t *testing.T) {
	out := os.Getenv("EMBTUNE_TEST_CACHED_OUT")
	if out == "" {
		t.Skip("helper process")
	}
	ctx := context.Background()
	m, err := minilm.Load(ctx, os.Getenv("EMBTUNE_TEST_CACHED_MODEL"), minilm.Options{Threads: 1, MaxSeqLength: 32})
	require.NoError(t, err)
	defer m.Close()
	mini, err := strconv.Atoi(os.Getenv("EMBTUNE_TEST_CACHED_MINI"))
	require.NoError(t, err)
	hp := cachedTestHyper(16, mini)
	hp.Epochs, hp.WarmupSteps = 1, 0
	opts := Options{GatherAcrossDevices: true}
	cfg, ok, err := distributed.FromEnv()
	require.NoError(t, err)
	if ok {
		cfg.Timeout = time.Minute
		g, err := distributed.Join(ctx, cfg, nil)
		require.NoError(t, err)
		opts.Group = g
		defer func() { require.NoError(t, g.Close(ctx, nil)) }()
	}
	// A hard-negative column: the alignment sentence-transformers #3453 fixed.
	res, err := Train(ctx, m, pairsWithNegatives(32, true), hp, opts)
	require.NoError(t, err)
	if opts.Group == nil || opts.Group.Main() {
		weights, err := m.Weights(ctx)
		require.NoError(t, err)
		require.NoError(t, hf.WriteSafetensors(filepath.Join(out, "model.safetensors"), weights, nil))
		b, err := json.Marshal(res.History)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, "history.json"), b, 0o644))
	}
}

// TestCachedDistributedEquivalence: 2 Gloo processes, each replaying only
// its own mini-batches (shard 8, mini-batch 4) after one all-gather, against
// 1 cached process and 1 plain process at the same global batch 16, with a
// hard-negative column and dropout off.
func TestCachedDistributedEquivalence(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 training processes")
	}
	model := noDropoutModel(t)
	start := func(out, mini string, env ...string) *exec.Cmd {
		require.NoError(t, os.MkdirAll(out, 0o755))
		c := exec.Command(os.Args[0], "-test.run=^TestCachedDistributedWorker$", "-test.count=1")
		c.Env = append(os.Environ(), append(env, "EMBTUNE_TEST_CACHED_OUT="+out,
			"EMBTUNE_TEST_CACHED_MODEL="+model, "EMBTUNE_TEST_CACHED_MINI="+mini)...)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		require.NoError(t, c.Start())
		return c
	}
	dir := t.TempDir()
	plain, one, two := filepath.Join(dir, "plain"), filepath.Join(dir, "one"), filepath.Join(dir, "two")
	require.NoError(t, start(plain, "0").Wait(), "1 plain process")
	require.NoError(t, start(one, "4").Wait(), "1 cached process")
	port := freePort(t)
	var ranks []*exec.Cmd
	for r := range 2 {
		ranks = append(ranks, start(two, "4", "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE=2",
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port)))
	}
	for r, c := range ranks {
		require.NoError(t, c.Wait(), "rank %d", r)
	}
	read := func(dir string) ([]StepLog, map[string]hf.RawTensor) {
		var h []StepLog
		readJSON(t, filepath.Join(dir, "history.json"), &h)
		w, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
		require.NoError(t, err)
		return h, w
	}
	hp, wp := read(plain)
	h1, w1 := read(one)
	h2, w2 := read(two)
	require.Len(t, h1, 2)
	require.Len(t, h2, 2)
	require.Len(t, hp, 2)
	for i := range h1 {
		assert.InDelta(t, hp[i].Loss, h1[i].Loss, 1e-6, "step %d: 1 cached process against 1 plain", i+1)
		assert.InDelta(t, h1[i].Loss, h2[i].Loss, 1e-6, "step %d: 2 cached processes against 1", i+1)
		assert.InDelta(t, h1[i].GradNorm, h2[i].GradNorm, 1e-4*h1[i].GradNorm, "step %d grad norm", i+1)
	}
	d1, d2 := maxWeightDelta(t, wp, w1), maxWeightDelta(t, w1, w2)
	t.Logf("first-step loss plain %.9f, 1 cached %.9f, 2 cached %.9f; weights max |Δ| cached/plain %.2g, 2/1 processes %.2g",
		hp[0].Loss, h1[0].Loss, h2[0].Loss, d1, d2)
	assert.LessOrEqual(t, d1, 1e-5, "1 cached process against 1 plain")
	assert.LessOrEqual(t, d2, 1e-5, "2 cached processes against 1")
}

// TestCachedStepBF16: under bfloat16 autocast the cached step runs and
// lands where the plain one does, within bfloat16's precision.
func TestCachedStepBF16(t *testing.T) {
	pairs := pairsWithNegatives(16, true)
	plainHP, cachedHP := cachedTestHyper(16, 0), cachedTestHyper(16, 4)
	plainHP.BF16, cachedHP.BF16 = true, true
	plain := oneStep(t, modelDir(t), pairs, plainHP, false, nil)
	cached := oneStep(t, modelDir(t), pairs, cachedHP, false, nil)
	t.Logf("bf16: loss %.6f vs %.6f, grad norm %.4f vs %.4f", plain.loss, cached.loss, plain.norm, cached.norm)
	assert.InDelta(t, plain.loss, cached.loss, 1e-2*plain.loss, "loss")
	assert.InDelta(t, plain.norm, cached.norm, 5e-2*plain.norm, "grad norm")
	assert.Zero(t, torch.Leaked())
}
