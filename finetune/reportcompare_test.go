package finetune

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/stats"
)

// foldsOf is a k-fold report whose fold f holds questions with these
// tuned scores (base 0.5 each).
func foldsOf(tuned ...[]float64) Report {
	var r Report
	for f, ts := range tuned {
		gains := make([]float64, len(ts))
		for i, v := range ts {
			gains[i] = v - 0.5
		}
		r.Folds = append(r.Folds, FoldReport{Fold: f + 1, Test: len(ts), Questions: fold(string(rune('a'+f)), gains...)})
	}
	return r
}

func TestCompareReports(t *testing.T) {
	a := foldsOf([]float64{0.9, 0.8, 0.7, 1, 0.6}, []float64{1, 1, 0.5, 0.9, 0.8})
	b := foldsOf([]float64{0.6, 0.8, 0.5, 0.9, 0.3}, []float64{0.7, 1, 0.5, 0.6, 0.4})
	rc, err := CompareReports(a, b, "out/generated/eval.json", "out/real/eval.json", "ndcg@10", 42)
	require.NoError(t, err)
	require.Len(t, rc.Report.Folds, 2)
	// Gain is A's tuned minus B's tuned, question by question, pooled over the folds.
	d := []float64{0.3, 0, 0.2, 0.1, 0.3, 0.3, 0, 0, 0.3, 0.4}
	c := rc.Report.Comparison
	assert.Equal(t, 10, c.Questions)
	assert.InDelta(t, mean(d), c.Gain, 1e-12)
	want, err := stats.PairedBootstrap(gainsOf(t, rc.Report), stats.Bootstrap{Seed: 42})
	require.NoError(t, err)
	assert.Equal(t, want, *c.Interval)
	assert.Equal(t, 0.6, rc.Report.Folds[0].Questions[0].Base["ndcg@10"], "B's tuned score is the reference")
	assert.Equal(t, 0.9, rc.Report.Folds[0].Questions[0].Tuned["ndcg@10"])
	assert.Equal(t, VerdictBetter, c.Verdict)
	assert.Contains(t, c.Summary, "out/generated/eval.json is better than out/real/eval.json (95% CI")

	var out bytes.Buffer
	PrintReportComparison(&out, rc)
	assert.Contains(t, out.String(), "A = out/generated/eval.json (tuned)\nB = out/real/eval.json (tuned)\n")
	assert.Contains(t, out.String(), "fold 2")
	assert.Contains(t, out.String(), "pooled         10     0.6300     0.8200  +0.1900")
	assert.Contains(t, out.String(), "verdict: "+c.Summary)

	// A held-out split compares as one group.
	s := Report{Questions: a.Folds[0].Questions}
	rc, err = CompareReports(s, Report{Questions: b.Folds[0].Questions}, "A", "B", "ndcg@10", 42)
	require.NoError(t, err)
	assert.Empty(t, rc.Report.Folds)
	assert.Len(t, rc.Report.Questions, 5)
}

func gainsOf(t *testing.T, r Report) []float64 {
	var d []float64
	for _, f := range r.Folds {
		g, err := gains(f.Questions, "ndcg@10")
		require.NoError(t, err)
		d = append(d, g...)
	}
	return d
}

func TestCompareReportsRefusesOtherQuestions(t *testing.T) {
	a := foldsOf([]float64{0.9, 0.8, 0.7, 1, 0.6}, []float64{1, 1, 0.5, 0.9, 0.8})
	_, err := CompareReports(a, foldsOf([]float64{0.9, 0.8, 0.7, 1, 0.6}), "A", "B", "ndcg@10", 42)
	assert.ErrorContains(t, err, "A has 2 folds and B 1: not the same held-out questions")

	b := foldsOf([]float64{0.9, 0.8, 0.7, 1, 0.6}, []float64{1, 1, 0.5, 0.9, 0.8})
	b.Folds[1].Questions[3].Question = "another question?"
	_, err = CompareReports(a, b, "A", "B", "ndcg@10", 42)
	assert.ErrorContains(t, err, `A and B were evaluated on different questions: question 4 of fold 2 is "b question 3?" in one and "another question?" in the other`)

	b.Folds[1].Questions = b.Folds[1].Questions[:4]
	_, err = CompareReports(a, b, "A", "B", "ndcg@10", 42)
	assert.ErrorContains(t, err, "fold 2 has 5 questions against 4")

	_, err = CompareReports(a, a, "A", "A", "mrr@10", 42)
	assert.ErrorContains(t, err, "has no mrr@10 score")

	_, err = CompareReports(Report{}, a, "A", "B", "ndcg@10", 42)
	assert.ErrorContains(t, err, "A: no per-question scores")

	_, err = ReadReport(filepath.Join(t.TempDir(), "none.json"))
	assert.Error(t, err)
}
