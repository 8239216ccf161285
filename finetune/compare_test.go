package finetune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/stats"
	"github.com/embtune/embtune/trainer"
)

// fold builds questions whose tuned - base gains in ndcg@10 are gains.
func fold(prefix string, gains ...float64) []QuestionScore {
	qs := make([]QuestionScore, len(gains))
	for i, g := range gains {
		base := 0.5
		qs[i] = QuestionScore{ID: i + 1, Question: fmt.Sprintf("%s question %d?", prefix, i),
			Base: map[string]float64{"ndcg@10": base}, Tuned: map[string]float64{"ndcg@10": base + g}, BaseRank: 2, TunedRank: 1}
	}
	return qs
}

func names(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("fold %d", i+1)
	}
	return out
}

func TestCompareGroupsVerdicts(t *testing.T) {
	up := []float64{0.1, 0.2, 0.05, 0.3, 0, 0.15, 0.12, -0.01, 0.25, 0.07}
	down := []float64{-0.1, -0.2, -0.05, -0.3, -0.4, -0.15, -0.12, -0.01, -0.25, -0.07}
	flat := []float64{0.1, -0.1, 0.2, -0.2, 0.05, -0.05, 0.3, -0.3, 0, 0.01}

	c, tests, err := compareGroups([][]QuestionScore{fold("a", up...), fold("b", up...), fold("c", flat...)}, names(3), "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Equal(t, VerdictBetter, c.Verdict)
	assert.Equal(t, 1, c.Sign())
	require.NotNil(t, c.Interval)
	assert.Equal(t, 30, c.Questions)
	// The interval is stats.PairedBootstrap of the pooled gains, fold by fold in order.
	want, err := stats.PairedBootstrap(append(append(append([]float64(nil), up...), up...), flat...), stats.Bootstrap{Seed: 42})
	require.NoError(t, err)
	assert.Equal(t, want, *c.Interval)
	assert.Equal(t, fmt.Sprintf("tuned is better (95%% CI %s … %s)", signed(want.Low), signed(want.High)), c.Summary)
	require.Len(t, tests, 3)
	for _, pt := range tests {
		require.NotNil(t, pt.PValue)
	}

	// Fold 2 loses on every question: exact p = 2/2^10, below 0.05/3.
	c, tests, err = compareGroups([][]QuestionScore{fold("a", up...), fold("b", down...), fold("c", up...)}, names(3), "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Equal(t, VerdictWorse, c.Verdict)
	assert.Equal(t, -1, c.Sign())
	assert.Equal(t, []int{2}, c.WorseFolds)
	assert.Equal(t, "tuned is worse: fold 2 (p = 0.002)", c.Summary)
	assert.Equal(t, stats.MethodExact, tests[1].Method)
	assert.InDelta(t, 2.0/1024, *tests[1].PValue, 1e-15)

	c, _, err = compareGroups([][]QuestionScore{fold("a", flat...), fold("b", flat...)}, names(2), "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Equal(t, VerdictNone, c.Verdict)
	assert.True(t, strings.HasPrefix(c.Summary, "no significant difference (95% CI −0."), c.Summary)

	// One held-out split, worse: the p-value and the interval.
	c, _, err = compareGroups([][]QuestionScore{fold("a", down...)}, []string{""}, "ndcg@10", 42, Subject{Name: "out/a", Other: "out/b"})
	require.NoError(t, err)
	assert.Equal(t, VerdictWorse, c.Verdict)
	assert.True(t, strings.HasPrefix(c.Summary, "out/a is worse than out/b (p = 0.002; 95% CI −0."), c.Summary)
}

func TestCompareGroupsRefusesSmallFolds(t *testing.T) {
	c, tests, err := compareGroups([][]QuestionScore{fold("a", 0.1, 0.2, 0.3, 0.4, 0.5), fold("b", 0.1, 0.2, 0.3, 0.4)}, names(2), "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Equal(t, VerdictRefused, c.Verdict)
	assert.Nil(t, c.Interval, "no interval is printed for a fold of 4")
	assert.Equal(t, "no interval: fold 2 has 4 test questions; a paired interval needs at least 5 per fold", c.Summary)
	assert.NotNil(t, tests[0].PValue)
	assert.Nil(t, tests[1].PValue)
	assert.Equal(t, "4 test questions; a paired test needs at least 5", tests[1].Refused)

	c, _, err = compareGroups([][]QuestionScore{fold("a", 0.1, 0.2, 0.3)}, []string{""}, "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Equal(t, "no interval: the test split has 3 test questions; a paired interval needs at least 5 per split", c.Summary)
	var b bytes.Buffer
	printComparison(&b, Report{Comparison: &c, Questions: fold("a", 0.1, 0.2, 0.3), PairedTest: &PairedTest{Refused: "3"}})
	assert.NotContains(t, b.String(), "CI")
	assert.Contains(t, b.String(), "verdict: no interval: the test split has 3 test questions")
}

func TestCompareGroupsUnchangedScoresMarshal(t *testing.T) {
	// No question changed: scipy's p-value is NaN (normal approximation,
	// n > 13); the report omits it, and eval.json still encodes.
	zeros := make([]float64, 20)
	c, tests, err := compareGroups([][]QuestionScore{fold("a", zeros...)}, []string{""}, "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	assert.Nil(t, tests[0].PValue)
	assert.Equal(t, VerdictNone, c.Verdict)
	assert.Equal(t, "no significant difference (95% CI +0.000 … +0.000)", c.Summary)
	_, err = json.Marshal(Report{Comparison: &c, PairedTest: &tests[0], Questions: fold("a", zeros...)})
	require.NoError(t, err)
}

func TestCheckSameTask(t *testing.T) {
	scores := func(model string, qs ...string) ModelScores {
		s := ModelScores{Model: model}
		for i, q := range qs {
			s.Questions = append(s.Questions, ModelQuestion{ID: i + 1, Question: q, Scores: trainer.IRMetrics{"ndcg@10": 0.5}})
		}
		return s
	}
	a := scores("A", "q1?", "q2?")
	require.NoError(t, CheckSameTask(a, scores("B", "q1?", "q2?")))
	assert.ErrorContains(t, CheckSameTask(a, scores("B", "q1?")), "A and B were evaluated on different tasks: 2 questions against 1")
	assert.ErrorContains(t, CheckSameTask(a, scores("B", "q1?", "q3?")), `A and B were evaluated on different tasks: question 2 is "q2?" in one and "q3?" in the other`)
	_, err := CompareModels(a, scores("B", "q2?", "q1?"), "ndcg@10", 42)
	assert.ErrorContains(t, err, "different tasks")
	_, err = CompareModels(a, scores("B", "q1?", "q2?"), "mrr@10", 42)
	assert.ErrorContains(t, err, "no mrr@10 score")
}

func TestQuestionScores(t *testing.T) {
	pairs := []dataset.Pair{{Anchor: "q1", Positive: "a1"}, {Anchor: "q2", Positive: "a2"}, {Anchor: "q1", Positive: "a3"}, {Anchor: "q3", Positive: "a4"}}
	task := dataset.NewIRTask(pairs, []dataset.Pair{pairs[3], pairs[0], pairs[2]})
	require.Equal(t, []string{"q3", "q1"}, task.Queries)
	r := func(rank int, mrr, ndcg float64) trainer.QueryResult {
		return trainer.QueryResult{Rank: rank, Metrics: trainer.IRMetrics{"mrr@10": mrr, "ndcg@10": ndcg, "accuracy@1": 0}}
	}
	qs, err := questionScores(task, questionIDs(pairs), "mrr@10", []trainer.QueryResult{r(2, 0.5, 0.63), r(0, 0, 0)},
		[]trainer.QueryResult{r(1, 1, 1), r(3, 0.33, 0.5)})
	require.NoError(t, err)
	assert.Equal(t, []QuestionScore{
		{ID: 4, Question: "q3", Base: map[string]float64{"mrr@10": 0.5, "ndcg@10": 0.63}, Tuned: map[string]float64{"mrr@10": 1, "ndcg@10": 1}, BaseRank: 2, TunedRank: 1},
		{ID: 1, Question: "q1", Base: map[string]float64{"mrr@10": 0, "ndcg@10": 0}, Tuned: map[string]float64{"mrr@10": 0.33, "ndcg@10": 0.5}, BaseRank: 0, TunedRank: 3},
	}, qs)
	_, err = questionScores(task, nil, "mrr@10", []trainer.QueryResult{r(1, 1, 1)}, nil)
	assert.Error(t, err)
}

// TestPrintComparison pins the end of a k-fold table.
func TestPrintComparison(t *testing.T) {
	up := []float64{0.1, 0.2, 0.05, 0.3, 0, 0.15}
	f1, f2 := fold("a", up...), fold("b", -0.1, 0.1, 0, 0.2, 0.05)
	c, tests, err := compareGroups([][]QuestionScore{f1, f2}, names(2), "ndcg@10", 42, tunedSubject)
	require.NoError(t, err)
	rep := Report{Comparison: &c, Folds: []FoldReport{{Fold: 1, Questions: f1, PairedTest: &tests[0]}, {Fold: 2, Questions: f2, PairedTest: &tests[1]}}}
	var b bytes.Buffer
	printComparison(&b, rep)
	iv := c.Interval
	assert.Equal(t, fmt.Sprintf(`
        questions       base      tuned     gain          p
fold 1          6     0.5000     0.6333  +0.1333     0.0625
fold 2          5     0.5000     0.5500  +0.0500     0.5000
pooled         11     0.5000     0.5955  +0.0955
(ndcg@10 per question, tuned - base; p: two-sided Wilcoxon signed-rank test)
gain +0.0955 over 11 questions, 95%% CI %+.4f … %+.4f (paired bootstrap over questions, 10000 resamples, seed 42)
verdict: %s
`, iv.Low, iv.High, c.Summary), b.String())
}
