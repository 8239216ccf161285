package trainer

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
)

// DimMetrics are the IR metrics with embeddings cut to Dim dimensions
// (InformationRetrievalEvaluator's truncate_dim), base and tuned, for a
// Matryoshka run. BytesPerVector is Dim float32s; Smaller is how many times
// smaller that is than the model's full vector.
type DimMetrics struct {
	Dim            int       `json:"dim"`
	BytesPerVector int       `json:"bytes_per_vector"`
	Smaller        float64   `json:"smaller"`
	Base           IRMetrics `json:"base"`
	Tuned          IRMetrics `json:"tuned"`
	BaseStd        IRMetrics `json:"base_std,omitempty"`
	TunedStd       IRMetrics `json:"tuned_std,omitempty"`
}

// evaluateTaskDims embeds the task once and computes the metrics at the
// full dimension and at each of dims (each cut and re-normalised).
func evaluateTaskDims(ctx context.Context, m embedding.Encoder, task dataset.IRTask, dims []int) (IRMetrics, []IRMetrics, error) {
	q, err := embedding.Queries(ctx, m, task.Queries, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate: queries: %w", err)
	}
	c, err := embedding.Documents(ctx, m, task.Corpus, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate: corpus: %w", err)
	}
	full, err := EvaluateIR(q, c, task.Relevant, DefaultIRConfig())
	if err != nil {
		return nil, nil, err
	}
	var byDim []IRMetrics
	for _, d := range dims {
		tq, err := embedding.TruncateVectors(q, d)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %w", err)
		}
		tc, err := embedding.TruncateVectors(c, d)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %w", err)
		}
		r, err := EvaluateIR(tq, tc, task.Relevant, DefaultIRConfig())
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate at dim %d: %w", d, err)
		}
		byDim = append(byDim, r)
	}
	return full, byDim, nil
}

// matryoshkaDims are the dims a job reports at: the matryoshka dims, or
// none when the loss is not a MatryoshkaLoss.
func (j *Job) matryoshkaDims() []int {
	ml, ok := j.Hyper.Matryoshka()
	if !ok {
		return nil
	}
	return ml.Dims
}

// evaluateDims is evaluate plus the metrics at each matryoshka dim (rank 0
// alone, as evaluate).
func (j *Job) evaluateDims(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (IRMetrics, []IRMetrics, error) {
	if !j.main() {
		return IRMetrics{}, nil, nil
	}
	return evaluateTaskDims(ctx, m, task, j.matryoshkaDims())
}

// dimMetrics pairs base and tuned metrics per matryoshka dim.
func (j *Job) dimMetrics(modelDim int, base, tuned []IRMetrics) []DimMetrics {
	dims := j.matryoshkaDims()
	if len(dims) == 0 || len(base) != len(dims) || len(tuned) != len(dims) {
		return nil
	}
	out := make([]DimMetrics, len(dims))
	for i, d := range dims {
		out[i] = DimMetrics{Dim: d, BytesPerVector: 4 * d, Smaller: float64(modelDim) / float64(d),
			Base: base[i], Tuned: tuned[i]}
	}
	return out
}

// meanDimMetrics averages the folds' per-dim metrics, with the sample
// standard deviation as meanStd.
func meanDimMetrics(folds []FoldReport) []DimMetrics {
	if len(folds) == 0 || len(folds[0].Matryoshka) == 0 {
		return nil
	}
	out := make([]DimMetrics, len(folds[0].Matryoshka))
	for i, first := range folds[0].Matryoshka {
		d := DimMetrics{Dim: first.Dim, BytesPerVector: first.BytesPerVector, Smaller: first.Smaller}
		d.Base, d.BaseStd = meanStd(folds, func(f FoldReport) IRMetrics { return f.Matryoshka[i].Base })
		d.Tuned, d.TunedStd = meanStd(folds, func(f FoldReport) IRMetrics { return f.Matryoshka[i].Tuned })
		out[i] = d
	}
	return out
}

// printDimTable prints NDCG@10 and MRR@10 at each matryoshka dim with the
// storage per vector.
func printDimTable(w io.Writer, dims []DimMetrics) {
	if len(dims) == 0 {
		return
	}
	fmt.Fprintf(w, "%-5s %6s %7s %8s %8s %8s %8s %8s\n", "dim", "bytes", "smaller",
		"base", "tuned", "delta", "base±", "tuned±")
	for _, d := range dims {
		fmt.Fprintf(w, "%-5d %6d %6.1fx %8.4f %8.4f %+8.4f %8s %8s\n", d.Dim, d.BytesPerVector, d.Smaller,
			d.Base["ndcg@10"], d.Tuned["ndcg@10"], d.Tuned["ndcg@10"]-d.Base["ndcg@10"],
			stdCell(d.BaseStd), stdCell(d.TunedStd))
	}
	fmt.Fprintln(w, "(ndcg@10 at each matryoshka dim: vectors cut to dim, re-normalised)")
}

func stdCell(m IRMetrics) string {
	v, ok := m["ndcg@10"]
	if !ok || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4f", v)
}
