package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

var (
	modelOnce sync.Once
	model     *minilm.Model
	modelErr  error
)

func loadModel(b testing.TB) *minilm.Model {
	b.Helper()
	dir := os.Getenv("EMBTUNE_MODEL")
	if dir == "" {
		dir = filepath.Join("..", "third_party", "models", "all-MiniLM-L6-v2")
	}
	modelOnce.Do(func() { model, modelErr = minilm.Load(context.Background(), dir, minilm.Options{}) })
	require.NoError(b, modelErr)
	return model
}

// goldenTexts returns the golden corpus texts (Debian FAQ, Bedrock pairs, edge cases).
func goldenTexts(b testing.TB) []string {
	b.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "golden", "tokens.jsonl"))
	require.NoError(b, err)
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct {
			Text string `json:"text"`
		}
		require.NoError(b, json.Unmarshal(sc.Bytes(), &row))
		texts = append(texts, row.Text)
	}
	require.NoError(b, sc.Err())
	return texts
}

// BenchmarkEncode reports sentences/s over the golden corpus at several batch sizes.
func BenchmarkEncode(b *testing.B) {
	m := loadModel(b)
	texts := goldenTexts(b)
	ctx := context.Background()
	for _, bs := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			if _, err := m.Encode(ctx, texts[:64], bs); err != nil { // warm-up
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Encode(ctx, texts, bs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(texts)*b.N)/b.Elapsed().Seconds(), "sentences/s")
		})
	}
}

// BenchmarkEncoderVsGEMM reports the encoder's effective GFLOP/s at batch
// 32 × seq 128 (no padding) and a 2048³ GEMM, measured in the same process
// on the same worker thread, and their ratio.
func BenchmarkEncoderVsGEMM(b *testing.B) {
	m := loadModel(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		gemm, err := GEMM(ctx, m.Worker(), 2048, 5)
		require.NoError(b, err)
		enc, tps, err := EncoderGFLOPs(ctx, m, 32, 128, 5)
		require.NoError(b, err)
		b.ReportMetric(gemm, "gemm-GFLOP/s")
		b.ReportMetric(enc, "encoder-GFLOP/s")
		b.ReportMetric(tps, "tokens/s")
		b.ReportMetric(enc/gemm, "ratio")
	}
}

// Pooling kernels over [32, 128, 384] token embeddings with ragged masks:
// a Go loop over host memory, composed libtorch ops (one cgo call each),
// and the fused shim call.
const poolB, poolS, poolH = 32, 128, 384

func poolingInputs() ([]float32, []int64) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, poolB*poolS*poolH)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	mask := make([]int64, poolB*poolS)
	for i := 0; i < poolB; i++ {
		n := 1 + r.IntN(poolS)
		for j := 0; j < n; j++ {
			mask[i*poolS+j] = 1
		}
	}
	return x, mask
}

// MeanPoolGo is the host-side reference: mean over masked tokens, then L2 normalise.
func MeanPoolGo(x []float32, mask []int64, b, s, h int) []float32 {
	out := make([]float32, b*h)
	for i := 0; i < b; i++ {
		row := out[i*h : (i+1)*h]
		var n float32
		for j := 0; j < s; j++ {
			if mask[i*s+j] == 0 {
				continue
			}
			n++
			tok := x[(i*s+j)*h : (i*s+j+1)*h]
			for k := range row {
				row[k] += tok[k]
			}
		}
		n = max(n, 1e-9)
		var norm float32
		for k := range row {
			row[k] /= n
			norm += row[k] * row[k]
		}
		norm = max(float32(math.Sqrt(float64(norm))), 1e-12)
		for k := range row {
			row[k] /= norm
		}
	}
	return out
}

// TestPoolingKernelsAgree checks that the three pooling implementations
// benchmarked below compute the same thing.
func TestPoolingKernelsAgree(t *testing.T) {
	x, mask := poolingInputs()
	want := MeanPoolGo(x, mask, poolB, poolS, poolH)
	tx, err := torch.FromFloat32(x, poolB, poolS, poolH)
	require.NoError(t, err)
	defer tx.Close()
	tm, err := torch.FromInt64(mask, poolB, poolS)
	require.NoError(t, err)
	defer tm.Close()
	out, err := torch.MeanPool(tx, tm, true)
	require.NoError(t, err)
	defer out.Close()
	got, err := out.Float32s()
	require.NoError(t, err)
	require.InDeltaSlice(t, want, got, 1e-5)
}

// BenchmarkMeanPool times the pooling kernels on [32, 128, 384] float32
// token embeddings; the MB/s column counts the bytes each must read (the
// embeddings and the mask). The copy sub-benchmark is the memory-bandwidth
// figure of the same run: torch copy_ of 256 MiB on the same worker,
// counting the bytes read and written. The pooling input is 6 MiB, which
// fits in L2 plus L3 on most servers, so the kernels can beat it.
//
// torchscript is the two-pass maths ((x * m).sum(1) writes and re-reads a
// temporary as large as x); fused-shim (torch.MeanPool) is one batched GEMM;
// encoder-unpadded is the encoder's own pooling, index_add over the real
// tokens only. Measured on a quiet 2-core Xeon: copy 21.7 GB/s, torchscript
// 13.1 (60%), fused-shim 30 (140%), encoder-unpadded 20.8 (96%).
func BenchmarkMeanPool(b *testing.B) {
	m := loadModel(b)
	ctx := context.Background()
	x, mask := poolingInputs()
	poolBytes := int64(len(x)*4 + len(mask)*8)
	b.Run("copy-256MiB", func(b *testing.B) {
		const n = 64 << 20 // float32 elements
		require.NoError(b, m.Worker().Do(ctx, func() error {
			src, err := torch.Zeros(torch.Float32, torch.CPU, n)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := torch.Zeros(torch.Float32, torch.CPU, n)
			if err != nil {
				return err
			}
			defer dst.Close()
			b.SetBytes(2 * 4 * n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := dst.CopyFrom(src); err != nil {
					return err
				}
			}
			return nil
		}))
	})
	b.Run("go-loop", func(b *testing.B) {
		b.SetBytes(poolBytes)
		for i := 0; i < b.N; i++ {
			_ = MeanPoolGo(x, mask, poolB, poolS, poolH)
		}
	})
	run := func(b *testing.B, pool func(tx, tm, tmf *torch.Tensor) (*torch.Tensor, error)) {
		require.NoError(b, m.Worker().Do(ctx, func() error {
			return torch.InferenceMode(func() error {
				tx, err := torch.FromFloat32(x, poolB, poolS, poolH)
				if err != nil {
					return err
				}
				defer tx.Close()
				tm, err := torch.FromInt64(mask, poolB, poolS)
				if err != nil {
					return err
				}
				defer tm.Close()
				mf := make([]float32, len(mask))
				for i, v := range mask {
					mf[i] = float32(v)
				}
				tmf, err := torch.FromFloat32(mf, poolB, poolS, 1)
				if err != nil {
					return err
				}
				defer tmf.Close()
				b.SetBytes(poolBytes)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					out, err := pool(tx, tm, tmf)
					if err != nil {
						return err
					}
					out.Close()
				}
				return nil
			})
		}))
	}
	// The same maths as a TorchScript method, as the encoder runs its pooling.
	pool, err := torch.NewModule("pool")
	require.NoError(b, err)
	defer pool.Close()
	require.NoError(b, pool.Define(`
def f(self, x, m):
    s = (x * m).sum(1) / m.sum(1)
    return s / torch.clamp(s.pow(2).sum(-1, keepdim=True).sqrt(), min=1e-12)

def packed(self, x, row, n):
    s = x.new_zeros([n.size(0), x.size(1)]).index_add(0, row, x) / n
    return s / torch.clamp(s.pow(2).sum(-1, keepdim=True).sqrt(), min=1e-12)
`))
	b.Run("torchscript", func(b *testing.B) {
		run(b, func(tx, _, tmf *torch.Tensor) (*torch.Tensor, error) {
			outs, err := pool.Run("f", tx, tmf)
			if err != nil {
				return nil, err
			}
			return outs[0], nil
		})
	})
	b.Run("fused-shim", func(b *testing.B) {
		run(b, func(tx, tm, _ *torch.Tensor) (*torch.Tensor, error) {
			return torch.MeanPool(tx, tm, true)
		})
	})
	// The encoder's own pooling: its tokens are unpadded ([T, H], the real
	// tokens only), summed per text with index_add. Bytes: the T rows and
	// their row indices.
	var packed []float32
	var rows []int64
	counts := make([]float32, poolB)
	for i := 0; i < poolB; i++ {
		for j := 0; j < poolS; j++ {
			if mask[i*poolS+j] != 0 {
				packed = append(packed, x[(i*poolS+j)*poolH:(i*poolS+j+1)*poolH]...)
				rows = append(rows, int64(i))
				counts[i]++
			}
		}
	}
	b.Run("encoder-unpadded", func(b *testing.B) {
		require.NoError(b, m.Worker().Do(ctx, func() error {
			return torch.InferenceMode(func() error {
				tx, err := torch.FromFloat32(packed, int64(len(rows)), poolH)
				if err != nil {
					return err
				}
				defer tx.Close()
				tr, err := torch.FromInt64(rows, int64(len(rows)))
				if err != nil {
					return err
				}
				defer tr.Close()
				tn, err := torch.FromFloat32(counts, poolB, 1)
				if err != nil {
					return err
				}
				defer tn.Close()
				b.SetBytes(int64(len(packed)*4 + len(rows)*8))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					outs, err := pool.Run("packed", tx, tr, tn)
					if err != nil {
						return err
					}
					outs[0].Close()
				}
				return nil
			})
		}))
	})
}

// BenchmarkEncodeRSS encodes the corpus 50 times in one process and reports
// the resident set before and after (MiB); it should stay flat.
func BenchmarkEncodeRSS(b *testing.B) {
	m := loadModel(b)
	texts := goldenTexts(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := m.Encode(ctx, texts, 32); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		first := rss()
		for r := 0; r < 49; r++ {
			if _, err := m.Encode(ctx, texts, 32); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		last := rss()
		b.ReportMetric(float64(first)/(1<<20), "rss-after-1-MiB")
		b.ReportMetric(float64(last)/(1<<20), "rss-after-50-MiB")
		b.ReportMetric(float64(torch.Leaked()), "leaked")
	}
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res) //nolint:errcheck
	return res * int64(os.Getpagesize())
}

// BenchmarkSearch times one exact top-10 query over an index of random
// normalised 384-dimensional vectors (corpus.Index.Search), at corpus sizes
// a RAG deployment on one box meets.
func BenchmarkSearch(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1_000, 10_000, 100_000} {
		vecs := make([][]float32, n)
		chunks := make([]corpus.Chunk, n)
		for i := range vecs {
			vecs[i] = make([]float32, 384)
			for j := range vecs[i] {
				vecs[i][j] = float32(rng.NormFloat64())
			}
		}
		x, err := corpus.FromVectors(corpus.Info{}, chunks, vecs)
		require.NoError(b, err)
		q := vecs[n/2]
		b.Run(fmt.Sprintf("chunks=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := x.Search(q, 10); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mchunks/s")
		})
	}
}

// Latency returns one positive duration per text and refuses no texts;
// Percentile takes the nearest rank without reordering its input.
func TestLatencyAndPercentile(t *testing.T) {
	m := loadModel(t)
	texts := []string{"How do I upgrade Debian?", "a", "Where are the package lists kept?"}
	d, err := Latency(context.Background(), m, texts)
	require.NoError(t, err)
	require.Len(t, d, len(texts))
	for _, x := range d {
		assert.Positive(t, x)
	}
	_, err = Latency(context.Background(), m, nil)
	assert.ErrorContains(t, err, "no texts")

	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	in := ms(5, 1, 4, 2, 3)
	assert.Equal(t, 3*time.Millisecond, Percentile(in, 0.5))
	assert.Equal(t, 5*time.Millisecond, Percentile(in, 0.99))
	assert.Equal(t, 1*time.Millisecond, Percentile(in, 0.01))
	assert.Equal(t, ms(5, 1, 4, 2, 3), in, "the input is not reordered")
	assert.Zero(t, Percentile(nil, 0.5))
}
