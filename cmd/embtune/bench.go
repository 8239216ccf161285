package main

import (
	"context"
	"encoding/json"
	"io"
	"os"

	"github.com/embtune/embtune/bench"
)

// runBench times Encode over a file of texts (one per line) and measures the
// encoder's GFLOP/s against a plain GEMM in the same process. It prints one
// JSON object; tools/golden/bench_peer.py puts it next to sentence-transformers.
func runBench(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("bench")
	var mf modelFlags
	mf.register(fs)
	mf.registerQuantize(fs)
	mf.registerBF16(fs)
	textsPath := fs.String("texts", "", "file with one text per line")
	batch := fs.Int("batch-size", 32, "texts per forward pass")
	reps := fs.Int("reps", 3, "timed repetitions (the median is reported)")
	gemm := fs.Bool("gemm", true, "also measure GEMM 2048³ and the encoder at 32×128")
	latency := fs.Bool("latency", false, "encode the texts one at a time instead and report each call's seconds and their p50 and p99")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	f, err := os.Open(*textsPath)
	if err != nil {
		return err
	}
	texts, err := readLines(f)
	f.Close()
	if err != nil {
		return err
	}
	m, err := mf.load(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	if *latency {
		d, err := bench.Latency(ctx, m, texts)
		if err != nil {
			return err
		}
		secs := make([]float64, len(d))
		for i, x := range d {
			secs[i] = x.Seconds()
		}
		return writeJSONLine(stdout, map[string]any{
			"texts": len(texts), "latency_seconds": secs,
			"p50_seconds": bench.Percentile(d, 0.5).Seconds(), "p99_seconds": bench.Percentile(d, 0.99).Seconds(),
		})
	}
	res, err := bench.Encode(ctx, m, texts, *batch, *reps)
	if err != nil {
		return err
	}
	out := map[string]any{
		"texts": res.Texts, "tokens": res.Tokens, "batch_size": res.BatchSize,
		"median_seconds": res.Timing.Median.Seconds(), "sentences_per_sec": res.SentencesPerSec,
		"tokens_per_sec": res.TokensPerSec, "useful_gflops": res.EffectiveGFLOPs,
	}
	if *gemm {
		g, err := bench.GEMM(ctx, m.Worker(), 2048, 5)
		if err != nil {
			return err
		}
		enc, tps, err := bench.EncoderGFLOPs(ctx, m, 32, 128, 5)
		if err != nil {
			return err
		}
		out["gemm_gflops"] = g
		out["encoder_32x128_gflops"] = enc
		out["encoder_32x128_tokens_per_sec"] = tps
		out["encoder_over_gemm"] = enc / g
	}
	return writeJSONLine(stdout, out)
}

// writeJSONLine writes v as one line of JSON, as bench_peer.py reads it.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
