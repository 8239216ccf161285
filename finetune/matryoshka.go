package finetune

import (
	"context"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/trainer"
)

// DimMetrics are the IR metrics with embeddings cut to Dim dimensions
// (InformationRetrievalEvaluator's truncate_dim), base and tuned, for a
// Matryoshka run. BytesPerVector is Dim float32s; Smaller is how many times
// smaller that is than the model's full vector.
type DimMetrics struct {
	Dim            int               `json:"dim"`
	BytesPerVector int               `json:"bytes_per_vector"`
	Smaller        float64           `json:"smaller"`
	Base           trainer.IRMetrics `json:"base"`
	Tuned          trainer.IRMetrics `json:"tuned"`
	BaseStd        trainer.IRMetrics `json:"base_std,omitempty"`
	TunedStd       trainer.IRMetrics `json:"tuned_std,omitempty"`
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

// evaluateDims is trainer.EvaluateQueries at the job's matryoshka dims: the
// metrics, the metrics at each dim and each question's result. Rank 0
// alone evaluates; the other ranks skip it.
func (j *Job) evaluateDims(ctx context.Context, m embedding.Encoder, task dataset.IRTask) (trainer.IRMetrics, []trainer.IRMetrics, []trainer.QueryResult, error) {
	if !j.main() {
		return trainer.IRMetrics{}, nil, nil, nil
	}
	ev, err := trainer.EvaluateQueries(ctx, m, task, j.matryoshkaDims())
	return ev.Metrics, ev.ByDim, ev.Queries, err
}

// dimMetrics pairs base and tuned metrics per matryoshka dim.
func (j *Job) dimMetrics(modelDim int, base, tuned []trainer.IRMetrics) []DimMetrics {
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
		d.Base, d.BaseStd = meanStd(folds, func(f FoldReport) trainer.IRMetrics { return f.Matryoshka[i].Base })
		d.Tuned, d.TunedStd = meanStd(folds, func(f FoldReport) trainer.IRMetrics { return f.Matryoshka[i].Tuned })
		out[i] = d
	}
	return out
}
