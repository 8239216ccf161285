// Package bench measures embtune against itself and against
// sentence-transformers: encode throughput, pooling kernels, and the
// encoder's effective GFLOP/s next to a plain GEMM in the same process.
// It drives only the public APIs of torch and minilm.
package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// EncoderFLOPsPerToken counts the multiply-adds (×2) of one token through a
// BERT encoder at sequence length seq: Q, K, V and output projections
// (4·H²), the feed-forward pair (2·H·I), and attention scores and the
// weighted sum (2·S·H), per layer.
func EncoderFLOPsPerToken(c hf.Config, seq int) float64 {
	h, i, s := float64(c.HiddenSize), float64(c.IntermediateSize), float64(seq)
	return 2 * float64(c.NumHiddenLayers) * (4*h*h + 2*h*i + 2*s*h)
}

// Timing summarises repeated runs.
type Timing struct {
	Runs   []time.Duration
	Median time.Duration
}

func summarize(runs []time.Duration) Timing {
	s := append([]time.Duration(nil), runs...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return Timing{Runs: runs, Median: s[len(s)/2]}
}

// GEMM measures an n×n×n float32 matrix product on the model's worker thread
// and returns the median GFLOP/s over reps runs.
func GEMM(ctx context.Context, w *torch.Worker, n, reps int) (float64, error) {
	var runs []time.Duration
	err := w.Do(ctx, func() error {
		return torch.InferenceMode(func() error {
			a, err := torch.Randn(torch.Float32, int64(n), int64(n))
			if err != nil {
				return err
			}
			defer a.Close()
			b, err := torch.Randn(torch.Float32, int64(n), int64(n))
			if err != nil {
				return err
			}
			defer b.Close()
			for r := 0; r < reps+1; r++ {
				start := time.Now()
				c, err := a.MatMul(b)
				if err != nil {
					return err
				}
				c.Close()
				if r > 0 { // the first run warms up the BLAS
					runs = append(runs, time.Since(start))
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	t := summarize(runs)
	return 2 * math.Pow(float64(n), 3) / t.Median.Seconds() / 1e9, nil
}

// RandomBatch returns batch sequences of exactly seq tokens ([CLS] … [SEP])
// with ids drawn from the vocabulary, so a run has no padding.
func RandomBatch(vocab, batch, seq int, seed uint64) [][]int64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]int64, batch)
	for i := range out {
		s := make([]int64, seq)
		s[0], s[seq-1] = 101, 102
		for j := 1; j < seq-1; j++ {
			s[j] = 1000 + r.Int64N(int64(vocab-1000))
		}
		out[i] = s
	}
	return out
}

// EncoderGFLOPs runs the encoder on an unpadded batch×seq batch reps times
// and returns the median effective GFLOP/s and tokens/s.
func EncoderGFLOPs(ctx context.Context, m *minilm.Model, batch, seq, reps int) (gflops, tokensPerSec float64, err error) {
	ids := RandomBatch(m.Folder.Config.VocabSize, batch, seq, 1)
	var runs []time.Duration
	for r := 0; r < reps+1; r++ {
		start := time.Now()
		if _, err := m.EncodeIDs(ctx, ids); err != nil {
			return 0, 0, err
		}
		if r > 0 {
			runs = append(runs, time.Since(start))
		}
	}
	t := summarize(runs)
	tokens := float64(batch * seq)
	tokensPerSec = tokens / t.Median.Seconds()
	return tokensPerSec * EncoderFLOPsPerToken(m.Folder.Config, seq) / 1e9, tokensPerSec, nil
}

// EncodeResult is one timed Encode over a corpus.
type EncodeResult struct {
	Texts, Tokens    int
	BatchSize        int
	Timing           Timing
	SentencesPerSec  float64
	TokensPerSec     float64
	EffectiveGFLOPs  float64
	FirstVectorCheck float32
}

// Encode times m.Encode over texts reps times (after one warm-up run).
func Encode(ctx context.Context, m *minilm.Model, texts []string, batchSize, reps int) (EncodeResult, error) {
	if reps < 1 {
		return EncodeResult{}, fmt.Errorf("reps must be at least 1")
	}
	warm, err := m.EncodeDetailed(ctx, texts, batchSize)
	if err != nil {
		return EncodeResult{}, err
	}
	tokens := 0
	flops := 0.0
	for _, n := range warm.Tokens {
		tokens += n
		flops += float64(n) * EncoderFLOPsPerToken(m.Folder.Config, n)
	}
	var runs []time.Duration
	for r := 0; r < reps; r++ {
		start := time.Now()
		if _, err := m.Encode(ctx, texts, batchSize); err != nil {
			return EncodeResult{}, err
		}
		runs = append(runs, time.Since(start))
	}
	t := summarize(runs)
	sec := t.Median.Seconds()
	return EncodeResult{
		Texts: len(texts), Tokens: tokens, BatchSize: batchSize, Timing: t,
		SentencesPerSec: float64(len(texts)) / sec, TokensPerSec: float64(tokens) / sec,
		EffectiveGFLOPs: flops / sec / 1e9, FirstVectorCheck: warm.Vectors[0][0],
	}, nil
}

// Latency encodes texts one at a time, as single queries arrive, and returns
// each call's duration (tokenizing, the forward pass and pooling; the first
// warm text runs untimed). It is the in-process floor under served latency.
func Latency(ctx context.Context, m *minilm.Model, texts []string) ([]time.Duration, error) {
	if len(texts) == 0 {
		return nil, fmt.Errorf("no texts")
	}
	if _, err := m.Encode(ctx, texts[:1], 1); err != nil {
		return nil, err
	}
	out := make([]time.Duration, len(texts))
	for i, t := range texts {
		start := time.Now()
		if _, err := m.Encode(ctx, []string{t}, 1); err != nil {
			return nil, fmt.Errorf("text %d: %w", i, err)
		}
		out[i] = time.Since(start)
	}
	return out, nil
}

// Percentile is the p-th percentile (0 < p ≤ 1) of d by nearest rank.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
