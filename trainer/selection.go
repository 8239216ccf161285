package trainer

import (
	"context"
	"fmt"
	"math"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
)

// The validation split of a small dataset is small: 19 questions on a
// Debian FAQ fold, 14 on a Bedrock one. One question moving from rank 1
// to rank 2 moves NDCG@10 by 0.37/19 ≈ 0.02, more than most epochs differ
// by, so the highest score alone picks an epoch, or the base model, by
// noise: in one 5-fold run that kept the base model on a fold where the
// full schedule gained +0.13, and stopped at epoch 3 of 10 where the full
// schedule did better on the test fold.
//
// The choice therefore leans towards the full schedule and needs evidence
// to leave it. Among the evaluations it takes the latest one whose
// per-query scores are within BestModelSE standard errors of the highest
// scoring one's (the mean paired difference over the validation queries at
// most BestModelSE·sd/√n); among WiSE-FT's α it takes the largest such α.
// An earlier step, the base model or a smaller α is chosen only when it
// wins by more than that. BestModelSE 0 keeps the highest score, the first
// of equal ones, as transformers' Trainer does.

// evaluateQueries scores task with m like evaluateTask, and also returns
// every query's value of the metric key.
func evaluateQueries(ctx context.Context, m embedding.Encoder, task dataset.IRTask, key string) (IRMetrics, []float64, error) {
	q, c, err := encodeTask(ctx, m, task)
	if err != nil {
		return nil, nil, err
	}
	return evaluateIRQueries(q, c, task.Relevant, DefaultIRConfig(), key)
}

// evaluateIRQueries is EvaluateIR plus each query's value of key, the
// metric every query contributes to the mean.
func evaluateIRQueries(queries, corpus [][]float32, relevant [][]int, cfg IRConfig, key string) (IRMetrics, []float64, error) {
	ranked, rel, err := rankIR(queries, corpus, relevant, cfg)
	if err != nil {
		return nil, nil, err
	}
	met := irMetrics(ranked, rel, len(corpus), cfg)
	if _, ok := met[key]; !ok {
		return nil, nil, fmt.Errorf("trainer: no metric %q among %v", key, met.Keys())
	}
	per := make([]float64, len(ranked))
	for i := range ranked {
		per[i] = irMetrics(ranked[i:i+1], rel[i:i+1], len(corpus), cfg)[key]
	}
	return met, per, nil
}

// chooseIndex picks among candidates in order (evaluations by step, or α
// from 0 to 1): the latest whose per-query scores are within se standard
// errors of the highest scoring one's. With se 0, or without per-query
// scores, it is the first highest score.
func chooseIndex(scores []float64, perQuery [][]float64, se float64) int {
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	if se <= 0 || len(perQuery) != len(scores) {
		return best
	}
	for i := len(scores) - 1; i > best; i-- {
		if withinNoise(perQuery[best], perQuery[i], se) {
			return i
		}
	}
	return best
}

// withinNoise reports whether cand's per-query scores trail best's by at
// most se standard errors of the mean paired difference.
func withinNoise(best, cand []float64, se float64) bool {
	n := len(best)
	if n == 0 || len(cand) != n {
		return false
	}
	var mean float64
	for i := range best {
		mean += best[i] - cand[i]
	}
	mean /= float64(n)
	if n == 1 {
		return mean <= 0
	}
	var ss float64
	for i := range best {
		d := best[i] - cand[i] - mean
		ss += d * d
	}
	sd := math.Sqrt(ss / float64(n-1))
	return mean <= se*sd/math.Sqrt(float64(n))+1e-12
}
