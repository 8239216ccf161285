package trainer

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// benchRun is a run over the first n Debian FAQ pairs at max_seq_length
// 128 (the default preset's), with mini-batch mb, on EMBTUNE_BENCH_THREADS
// threads (default 2).
func benchRun(b *testing.B, n, mb int) *run {
	b.Helper()
	threads := 2
	if v := os.Getenv("EMBTUNE_BENCH_THREADS"); v != "" {
		var err error
		threads, err = strconv.Atoi(v)
		require.NoError(b, err, "EMBTUNE_BENCH_THREADS")
	}
	ctx := context.Background()
	m, err := minilm.Load(ctx, modelDir(b), minilm.Options{MaxSeqLength: 128, Threads: threads})
	require.NoError(b, err)
	b.Cleanup(m.Close)
	pairs, err := dataset.Load("../testdata/data/debian-faq.jsonl")
	require.NoError(b, err)
	require.GreaterOrEqual(b, len(pairs), n)
	hp := DefaultHyperParameters()
	hp.BatchSize, hp.ValidationSplit, hp.MiniBatchSize = n, 0, mb
	r, err := newRun(ctx, m, pairs[:n], hp)
	require.NoError(b, err)
	b.Cleanup(r.close)
	return r
}

// BenchmarkGradCachePasses times GradCache's passes over 64 Debian FAQ
// pairs, the whole batch in one call against mini-batches of 16: the
// graph-free first pass, and a forward and backward (the replay), for the
// questions and the answers. Per text they should cost the same; see
// docs/training.md for what the OpenMP wait policy does to that.
//
//	OMP_WAIT_POLICY=PASSIVE tools/gotest.sh test -run '^$' -bench GradCachePasses -benchtime 1x ./trainer/
func BenchmarkGradCachePasses(b *testing.B) {
	r := benchRun(b, 64, 16)
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = i
	}
	anchors, docs := r.batchTexts(idx)
	pass := func(seqs [][]int64, size int, grad bool) error {
		for i := 0; i < len(seqs); i += size {
			if err := r.onWorker(func(s *torch.Scope) error {
				e := r.embed(s, seqs[i:min(i+size, len(seqs))])
				if err := s.Err(); err != nil || !grad {
					return err
				}
				shape, err := e.Shape()
				if err != nil {
					return err
				}
				g := s.Keep(torch.Zeros(torch.Float32, r.m.Device(), shape...))
				surrogate := s.Keep(r.surrogate.mod.Forward(e, g))
				if err := s.Err(); err != nil {
					return err
				}
				return surrogate.Backward()
			}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range []struct {
		name string
		grad bool
	}{{"first-pass", false}, {"replay", true}} {
		for _, texts := range []struct {
			name string
			seqs [][]int64
		}{{"questions", anchors}, {"answers", docs}} {
			for _, size := range []int{64, 16} {
				b.Run(fmt.Sprintf("%s/%s/mini-batch-%d", p.name, texts.name, size), func(b *testing.B) {
					for range b.N {
						if p.grad {
							require.NoError(b, pass(texts.seqs, size, true))
						} else {
							require.NoError(b, torch.NoGrad(func() error { return pass(texts.seqs, size, false) }))
						}
					}
				})
			}
		}
	}
}

// peakRSS is the process's VmHWM in KiB.
func peakRSS(b *testing.B) int64 { return procStatusKiB(b, "VmHWM:") }

// rss is the resident set now (VmRSS), in KiB.
func rss(b *testing.B) int64 { return procStatusKiB(b, "VmRSS:") }

// resetPeakRSS sets the peak (VmHWM) to the resident set now (Linux's
// clear_refs 5).
func resetPeakRSS(b *testing.B) {
	b.Helper()
	require.NoError(b, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
}

func procStatusKiB(b *testing.B, field string) int64 {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(b, err)
			return kib
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkCachedLossMemory reports how far the loss and its backward over
// a cached batch of B pairs (random 384-d embeddings) raise the peak RSS
// above the resident set before it (the peak is reset first): what grows
// with the batch in a cached step, besides the embeddings.
//
//	tools/gotest.sh test -run '^$' -bench CachedLossMemory -benchtime 1x ./trainer/
//
// EMBTUNE_BENCH_LOSS_BATCHES=16384,20000 runs those batches instead.
func BenchmarkCachedLossMemory(b *testing.B) {
	r := benchRun(b, 32, 16)
	batches := []int64{1024, 2048, 4096, 8192}
	if env := os.Getenv("EMBTUNE_BENCH_LOSS_BATCHES"); env != "" {
		batches = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			require.NoError(b, err, "EMBTUNE_BENCH_LOSS_BATCHES")
			batches = append(batches, n)
		}
	}
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch-%d", n), func(b *testing.B) {
			resetPeakRSS(b)
			base := rss(b)
			for range b.N {
				require.NoError(b, r.onWorker(func(s *torch.Scope) error {
					a := s.Keep(torch.Randn(torch.Float32, n, 384))
					d := s.Keep(torch.Randn(torch.Float32, n, 384))
					if err := s.Err(); err != nil {
						return err
					}
					for _, t := range []*torch.Tensor{a, d} {
						if err := t.SetRequiresGrad(true); err != nil {
							return err
						}
					}
					l, err := r.loss.Loss(s, a, d)
					if err != nil {
						return err
					}
					return l.Backward()
				}))
			}
			b.ReportMetric(float64(peakRSS(b)-base), "peak-KiB-added")
		})
	}
}

// BenchmarkGradCacheStep times one optimizer step over 64 Debian FAQ pairs,
// plain and cached at mini-batch 16, in one process (the plain step first).
//
//	[OMP_WAIT_POLICY=PASSIVE] tools/gotest.sh test -run '^$' -bench GradCacheStep -benchtime 1x ./trainer/
func BenchmarkGradCacheStep(b *testing.B) {
	r := benchRun(b, 64, 16)
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = i
	}
	for _, mb := range []int{0, 16} {
		name := "plain"
		if mb > 0 {
			name = fmt.Sprintf("cached-mini-batch-%d", mb)
		}
		b.Run(name, func(b *testing.B) {
			r.hp.MiniBatchSize = mb
			for range b.N {
				_, _, err := r.step(idx, 2e-5)
				require.NoError(b, err)
			}
		})
	}
}
