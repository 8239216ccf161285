package trainer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
)

func TestShard(t *testing.T) {
	for _, c := range []struct{ n, w int }{{16, 2}, {15, 2}, {7, 4}, {3, 4}, {32, 8}} {
		next := 0
		for r := range c.w {
			lo, hi := shard(c.n, r, c.w)
			assert.Equal(t, next, lo, "n=%d w=%d rank %d starts where rank %d ended", c.n, c.w, r, r-1)
			assert.LessOrEqual(t, hi-lo, c.n/c.w+1)
			assert.GreaterOrEqual(t, hi-lo, c.n/c.w)
			next = hi
		}
		assert.Equal(t, c.n, next, "every pair of the batch is on exactly one rank")
	}
	assert.Equal(t, uint64(42), shardSeed(42, 0))
	assert.NotEqual(t, shardSeed(42, 1), shardSeed(42, 2))
}

// noDropoutModel is the test model with dropout off, in a temporary folder.
func noDropoutModel(t *testing.T) string {
	src := modelDir(t)
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() != "config.json" {
			require.NoError(t, os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())))
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	cfg["hidden_dropout_prob"], cfg["attention_probs_dropout_prob"] = 0.0, 0.0
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

// TestDistributedWorker is one training process of TestDistributedEquivalence,
// run as a child of the test binary; it does nothing in a normal test run.
func TestDistributedWorker(t *testing.T) {
	out := os.Getenv("EMBTUNE_TEST_WORKER_OUT")
	if out == "" {
		t.Skip("helper process")
	}
	ctx := context.Background()
	all, err := dataset.Load(filepath.Join("..", "testdata", "data", "debian-faq.jsonl"))
	require.NoError(t, err)
	m, err := minilm.Load(ctx, os.Getenv("EMBTUNE_TEST_WORKER_MODEL"), minilm.Options{Threads: 1, MaxSeqLength: 32})
	require.NoError(t, err)
	defer m.Close()
	hp := DefaultHyperParameters()
	hp.BatchSize, hp.Epochs, hp.MaxSeqLength = 16, 2, 32
	hp.GradientCheckpointing = os.Getenv("EMBTUNE_TEST_WORKER_CHECKPOINTING") == "1"
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
	res, err := Train(ctx, m, all[:32], hp, opts)
	require.NoError(t, err)
	if opts.Group == nil || opts.Group.Main() {
		weights, err := m.Weights(ctx)
		require.NoError(t, err)
		require.NoError(t, hf.WriteSafetensors(filepath.Join(out, "model.safetensors"), weights, nil))
		b, err := json.Marshal(res.History)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, "history.json"), b, 0o644))
		b, err = json.Marshal(res.Validation)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, "validation.json"), b, 0o644))
		if res.Comm != nil {
			b, _ := json.Marshal(res.Comm)
			require.NoError(t, os.WriteFile(filepath.Join(out, "comm.json"), b, 0o644))
		}
	}
}

// TestDistributedEquivalence: 2 processes over Gloo on loopback, 1 thread
// each, global batch 16, no dropout, with gradient checkpointing, against
// 1 process at batch 16 without it.
func TestDistributedEquivalence(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 training processes")
	}
	model := noDropoutModel(t)
	port := freePort(t)
	start := func(out string, env ...string) *exec.Cmd {
		require.NoError(t, os.MkdirAll(out, 0o755))
		c := exec.Command(os.Args[0], "-test.run=^TestDistributedWorker$", "-test.count=1")
		c.Env = append(os.Environ(), append(env, "EMBTUNE_TEST_WORKER_OUT="+out, "EMBTUNE_TEST_WORKER_MODEL="+model)...)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		require.NoError(t, c.Start())
		return c
	}
	one, two := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	require.NoError(t, start(one).Wait(), "1 process")
	var ranks []*exec.Cmd
	for r := range 2 {
		ranks = append(ranks, start(two, "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE=2",
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "EMBTUNE_TEST_WORKER_CHECKPOINTING=1"))
	}
	for r, c := range ranks {
		require.NoError(t, c.Wait(), "rank %d", r)
	}

	var h1, h2 []StepLog
	readJSON(t, filepath.Join(one, "history.json"), &h1)
	readJSON(t, filepath.Join(two, "history.json"), &h2)
	require.Len(t, h1, 4)
	require.Len(t, h2, 4)
	assert.InDelta(t, h1[0].Loss, h2[0].Loss, 1e-6, "first-step loss")
	for i := range h1 {
		assert.InDelta(t, h1[i].Loss, h2[i].Loss, 1e-5, "step %d loss", i+1)
		assert.InDelta(t, h1[i].GradNorm, h2[i].GradNorm, 1e-4*h1[i].GradNorm, "step %d grad norm", i+1)
	}
	// The default preset validates: every rank scored the same split and
	// agreed (Train checks it through the store) on what 1 process chose.
	var v1, v2 ValidationReport
	readJSON(t, filepath.Join(one, "validation.json"), &v1)
	readJSON(t, filepath.Join(two, "validation.json"), &v2)
	require.Len(t, v1.Evaluations, 3, "the base and 2 epochs")
	require.Len(t, v2.Evaluations, 3)
	for i := range v1.Evaluations {
		assert.InDelta(t, v1.Evaluations[i].Metrics["ndcg@10"], v2.Evaluations[i].Metrics["ndcg@10"], 1e-6, "evaluation %d", i)
	}
	assert.Equal(t, v1.BestStep, v2.BestStep)
	assert.Equal(t, v1.Alpha, v2.Alpha)
	assert.Equal(t, v1.BaseWon, v2.BaseWon)
	w1, _, err := hf.ReadSafetensors(filepath.Join(one, "model.safetensors"))
	require.NoError(t, err)
	w2, _, err := hf.ReadSafetensors(filepath.Join(two, "model.safetensors"))
	require.NoError(t, err)
	base, _, err := hf.ReadSafetensors(filepath.Join(model, "model.safetensors"))
	require.NoError(t, err)
	require.Equal(t, len(w1), len(w2))
	maxDelta, moved := 0.0, 0.0
	for name, a := range w1 {
		b, ok := w2[name]
		require.True(t, ok, name)
		fa, fb := f32s(a.Data), f32s(b.Data)
		require.Equal(t, len(fa), len(fb), name)
		fbase := f32s(base[name].Data)
		for i := range fa {
			maxDelta = math.Max(maxDelta, math.Abs(float64(fa[i])-float64(fb[i])))
			if len(fbase) == len(fa) {
				moved = math.Max(moved, math.Abs(float64(fa[i])-float64(fbase[i])))
			}
		}
	}
	t.Logf("first-step loss %.9f vs %.9f; final weights max |Δ| %.3g (training moved them by up to %.3g)", h1[0].Loss, h2[0].Loss, maxDelta, moved)
	assert.LessOrEqual(t, maxDelta, 1e-5, "final weights")
	assert.Greater(t, moved, 1e-5, "training changed the weights")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
