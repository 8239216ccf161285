package trainer

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
)

// QueryResult is one query's outcome in an evaluation: what it adds to each
// mean metric, and where its first relevant document ranked.
type QueryResult struct {
	// Rank is the 1-based rank of the query's first relevant document
	// among the top max(k) documents (100 with DefaultIRConfig's map@100),
	// 0 when none is there.
	Rank int
	// Metrics are the query's own values; a task's metric is their mean
	// over its queries.
	Metrics IRMetrics
}

// QueryEvaluation is EvaluateQueries' result.
type QueryEvaluation struct {
	// Metrics are InformationRetrievalEvaluator's metrics at the full dimension.
	Metrics IRMetrics
	// ByDim holds the metrics at each of the dims asked for.
	ByDim []IRMetrics
	// Queries holds each query's result at the full dimension, in task order.
	Queries []QueryResult
}

// EvaluateQueries is EvaluateDims plus every query's own result, for the
// paired comparisons of two models question by question.
func EvaluateQueries(ctx context.Context, m embedding.Encoder, task dataset.IRTask, dims []int) (QueryEvaluation, error) {
	q, c, err := encodeTask(ctx, m, task)
	if err != nil {
		return QueryEvaluation{}, err
	}
	cfg := DefaultIRConfig()
	ranked, rel, err := rankIR(q, c, task.Relevant, cfg)
	if err != nil {
		return QueryEvaluation{}, err
	}
	ev := QueryEvaluation{Metrics: irMetrics(ranked, rel, len(c), cfg), Queries: make([]QueryResult, len(ranked))}
	for i, top := range ranked {
		r := QueryResult{Metrics: irMetrics(ranked[i:i+1], rel[i:i+1], len(c), cfg)}
		for pos, j := range top {
			if containsSorted(rel[i], j) {
				r.Rank = pos + 1
				break
			}
		}
		ev.Queries[i] = r
	}
	for _, d := range dims {
		tq, err := embedding.TruncateVectors(q, d)
		if err != nil {
			return QueryEvaluation{}, fmt.Errorf("evaluate: %w", err)
		}
		tc, err := embedding.TruncateVectors(c, d)
		if err != nil {
			return QueryEvaluation{}, fmt.Errorf("evaluate: %w", err)
		}
		r, err := EvaluateIR(tq, tc, task.Relevant, cfg)
		if err != nil {
			return QueryEvaluation{}, fmt.Errorf("evaluate at dim %d: %w", d, err)
		}
		ev.ByDim = append(ev.ByDim, r)
	}
	return ev, nil
}

func containsSorted(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
		if x > v {
			return false
		}
	}
	return false
}
