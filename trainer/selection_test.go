package trainer

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embtune/embtune/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChooseIndex(t *testing.T) {
	same := []float64{1, 0.5, 0.63, 1, 0}
	up := []float64{1, 1, 0.63, 1, 0}      // same, one query better
	down := []float64{0, 0, 0, 0.5, 0}     // every query worse or equal
	noisy := []float64{1, 0, 0.63, 1, 0.5} // one query better, one worse
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	scores := func(p ...[]float64) []float64 {
		out := make([]float64, len(p))
		for i, v := range p {
			out[i] = mean(v)
		}
		return out
	}
	cases := []struct {
		name string
		per  [][]float64
		se   float64
		want int
	}{
		{"a later tie is chosen", [][]float64{same, same}, 1, 1},
		{"with se 0 the first of a tie", [][]float64{same, same}, 0, 0},
		{"a later step trailing by noise is chosen", [][]float64{same, up, noisy}, 1, 2},
		{"with se 0 the highest", [][]float64{same, up, noisy}, 0, 1},
		// up − same is 0.5 on one query of 5: mean 0.1, standard error 0.1.
		{"a difference of exactly one standard error is noise", [][]float64{same, up, same}, 1, 2},
		{"below one standard error it is not", [][]float64{same, up, same}, 0.99, 1},
		{"the base is kept when every later step is clearly worse", [][]float64{same, down, down}, 1, 0},
		{"a step after a clearly worse one can still be chosen", [][]float64{same, down, same}, 1, 2},
	}
	for _, c := range cases {
		got := chooseIndex(scores(c.per...), c.per, c.se)
		assert.Equal(t, c.want, got, c.name)
	}
	// Without per-query scores (a checkpoint from before they were kept)
	// the highest score is chosen.
	assert.Equal(t, 1, chooseIndex([]float64{0.5, 0.6, 0.6}, nil, 1))
	assert.Equal(t, 1, chooseIndex([]float64{0.5, 0.6, 0.6}, [][]float64{nil, nil, nil}, 1))
}

// TestEvaluateIRQueries: every query's values average to EvaluateIR's
// metric, for every metric.
func TestEvaluateIRQueries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vec := func() []float32 {
		v := make([]float32, 16)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	var queries, corpus [][]float32
	var relevant [][]int
	for range 40 {
		corpus = append(corpus, vec())
	}
	for i := range 25 {
		queries = append(queries, vec())
		relevant = append(relevant, []int{i, (i * 7) % 40})
	}
	cfg := DefaultIRConfig()
	want, err := EvaluateIR(queries, corpus, relevant, cfg)
	require.NoError(t, err)
	for _, key := range want.Keys() {
		got, per, err := evaluateIRQueries(queries, corpus, relevant, cfg, key)
		require.NoError(t, err)
		assert.Equal(t, want, got)
		require.Len(t, per, len(queries))
		sum := 0.0
		for _, v := range per {
			sum += v
		}
		assert.InDelta(t, want[key], sum/float64(len(per)), 1e-12, key)
	}
	_, _, err = evaluateIRQueries(queries, corpus, relevant, cfg, "ndcg@11")
	assert.ErrorContains(t, err, `no metric "ndcg@11"`)
}

// TestLoadBestModelWithinNoise trains TestLoadBestModelAtEnd's run with the
// default BestModelSE of 1: the evaluations carry per-query scores that
// average to their metric, the chosen step is the highest or a later one
// trailing it by at most one standard error, every step after the chosen
// one trails the highest by more, and the output scores the chosen step's
// score.
func TestLoadBestModelWithinNoise(t *testing.T) {
	if testing.Short() {
		t.Skip("trains")
	}
	ctx := context.Background()
	pairs, hp := bestModelRun(t)
	require.Equal(t, 1.0, hp.BestModelSE, "the default preset's")
	m := loadModel(t, hp.MaxSeqLength)
	res, err := Train(ctx, m, pairs, hp, Options{})
	require.NoError(t, err)
	v := res.Validation
	require.NotNil(t, v)
	require.Len(t, v.Evaluations, 4)
	hi := 0
	for i, e := range v.Evaluations {
		require.Len(t, e.Queries, v.Pairs)
		sum := 0.0
		for _, x := range e.Queries {
			sum += x
		}
		assert.InDelta(t, e.Metrics["ndcg@10"], sum/float64(len(e.Queries)), 1e-12)
		if e.Metrics["ndcg@10"] > v.Evaluations[hi].Metrics["ndcg@10"] {
			hi = i
		}
	}
	assert.Equal(t, v.Evaluations[hi].Step, v.HighestStep)
	// trails: the mean paired shortfall against the highest, and its
	// standard error, computed here from the definition.
	trails := func(e Evaluation) (float64, float64) {
		n := float64(len(e.Queries))
		var d, d2 float64
		for q, x := range e.Queries {
			diff := v.Evaluations[hi].Queries[q] - x
			d += diff
			d2 += diff * diff
		}
		mean := d / n
		return mean, math.Sqrt((d2 - n*mean*mean) / (n - 1) / n)
	}
	chosen := -1
	for i, e := range v.Evaluations {
		if e.Step == v.BestStep {
			chosen = i
		}
	}
	require.GreaterOrEqual(t, chosen, hi)
	if chosen > hi {
		mean, se := trails(v.Evaluations[chosen])
		assert.LessOrEqual(t, mean, se+1e-9)
	}
	for _, e := range v.Evaluations[chosen+1:] {
		mean, se := trails(e)
		assert.Greater(t, mean, se, "step %d trails by noise only and is later than the chosen one", e.Step)
	}
	val, err := evaluateTask(ctx, m, ValidationTask(pairs, validationPairs(t, pairs, hp)))
	require.NoError(t, err)
	assert.Equal(t, v.BestScore, val["ndcg@10"])
	t.Logf("evaluations %v, highest step %d, chosen step %d", evalScores(v.Evaluations, "ndcg@10"), v.HighestStep, v.BestStep)
	assert.Zero(t, torch.Leaked())
}
