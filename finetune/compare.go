package finetune

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/stats"
	"github.com/embtune/embtune/trainer"
)

// MinQuestions is the fewest test questions a fold or split needs before
// a paired interval or p-value is reported. With fewer, one question is
// 20% of the sample and a bootstrap interval or rank test is noise
// presented as evidence; the report says so instead.
const MinQuestions = 5

// Alpha is the significance level of the verdict: a 95% interval, and a
// fold is called worse when its two-sided p-value is below Alpha divided
// by the number of folds (Bonferroni), so that five folds do not give a
// one-in-four chance of a "worse" verdict by luck.
const Alpha = 0.05

// QuestionScore is one test question under the base and the tuned model.
type QuestionScore struct {
	// ID is the 1-based position of the question's first pair in the
	// evaluated pairs: the --data file, or the --test-data file.
	ID       int    `json:"id"`
	Question string `json:"question"`
	// Base and Tuned hold the question's metric of record and ndcg@10.
	Base  map[string]float64 `json:"base"`
	Tuned map[string]float64 `json:"tuned"`
	// BaseRank and TunedRank are the 1-based ranks of the question's first
	// relevant answer, 0 when it is not in the top 100.
	BaseRank  int `json:"base_rank"`
	TunedRank int `json:"tuned_rank"`
}

// PairedTest is the two-sided Wilcoxon signed-rank test of one fold's (or
// the split's) per-question differences, tuned - base, in the metric of
// record.
type PairedTest struct {
	Metric    string  `json:"metric"`
	Questions int     `json:"questions"`
	Gain      float64 `json:"gain"`
	// PValue is absent when no question's score changed under the normal
	// approximation (scipy's NaN) and when the test was refused.
	PValue    *float64 `json:"p_value,omitempty"`
	Statistic float64  `json:"statistic"`
	Method    string   `json:"method,omitempty"`
	// Refused says why no test was made (too few questions).
	Refused string `json:"refused,omitempty"`
}

// Comparison is the pooled paired comparison over every test question of
// every fold (or of the split), in the metric of record.
type Comparison struct {
	Metric    string  `json:"metric"`
	Questions int     `json:"questions"`
	Gain      float64 `json:"gain"`
	// Interval is the paired bootstrap interval of the mean gain; absent
	// when refused.
	Interval *stats.Interval `json:"interval,omitempty"`
	// Verdict is better, worse, none or refused; Summary the printed line.
	Verdict string `json:"verdict"`
	Summary string `json:"summary"`
	// WorseFolds are the folds called significantly worse.
	WorseFolds []int `json:"worse_folds,omitempty"`
}

// Verdicts.
const (
	VerdictBetter  = "better"
	VerdictWorse   = "worse"
	VerdictNone    = "none"
	VerdictRefused = "refused"
)

// Sign is the verdict as a number for metrics: 1 better, -1 worse, 0 otherwise.
func (c Comparison) Sign() int {
	switch c.Verdict {
	case VerdictBetter:
		return 1
	case VerdictWorse:
		return -1
	}
	return 0
}

// questionScores pairs the base and tuned results of a task's queries.
// ids maps a question text to its ID.
func questionScores(task dataset.IRTask, ids map[string]int, key string, base, tuned []trainer.QueryResult) ([]QuestionScore, error) {
	if len(base) != len(task.Queries) || len(tuned) != len(task.Queries) {
		return nil, fmt.Errorf("per-question scores: %d base and %d tuned results for %d questions", len(base), len(tuned), len(task.Queries))
	}
	out := make([]QuestionScore, len(task.Queries))
	for i, q := range task.Queries {
		pick := func(m trainer.IRMetrics) map[string]float64 {
			return map[string]float64{key: m[key], "ndcg@10": m["ndcg@10"]}
		}
		out[i] = QuestionScore{ID: ids[q], Question: q, Base: pick(base[i].Metrics), Tuned: pick(tuned[i].Metrics),
			BaseRank: base[i].Rank, TunedRank: tuned[i].Rank}
	}
	return out, nil
}

// questionIDs numbers the distinct anchors of pairs by their first pair, from 1.
func questionIDs(pairs []dataset.Pair) map[string]int {
	ids := make(map[string]int, len(pairs))
	for i, p := range pairs {
		if _, ok := ids[p.Anchor]; !ok {
			ids[p.Anchor] = i + 1
		}
	}
	return ids
}

// gains returns tuned - base in key for each question.
func gains(qs []QuestionScore, key string) ([]float64, error) {
	d := make([]float64, len(qs))
	for i, q := range qs {
		b, okB := q.Base[key]
		t, okT := q.Tuned[key]
		if !okB || !okT {
			return nil, fmt.Errorf("question %d has no %s score", q.ID, key)
		}
		d[i] = t - b
	}
	return d, nil
}

// pairedTest is the Wilcoxon test of one group of questions.
func pairedTest(qs []QuestionScore, key string) (PairedTest, error) {
	pt := PairedTest{Metric: key, Questions: len(qs)}
	d, err := gains(qs, key)
	if err != nil {
		return pt, err
	}
	if len(d) > 0 {
		pt.Gain = mean(d)
	}
	if len(d) < MinQuestions {
		pt.Refused = fmt.Sprintf("%d test questions; a paired test needs at least %d", len(d), MinQuestions)
		return pt, nil
	}
	w, err := stats.Wilcoxon(d)
	if err != nil {
		return pt, err
	}
	pt.Statistic, pt.Method = w.Statistic, w.Method
	if !math.IsNaN(w.PValue) {
		p := w.PValue
		pt.PValue = &p
	}
	return pt, nil
}

// Subject names the two sides of a comparison in its verdict line:
// "tuned" (against the base model) in a training report, or the two
// model folders in `embtune eval --compare`.
type Subject struct{ Name, Other string }

var tunedSubject = Subject{Name: "tuned"}

// compareGroups pools the questions of every group (fold, or the one
// split) for the bootstrap interval and tests each group on its own. names
// label the groups in the verdict ("fold 3"; empty for a single split).
func compareGroups(groups [][]QuestionScore, names []string, key string, seed uint64, subj Subject) (Comparison, []PairedTest, error) {
	c := Comparison{Metric: key}
	tests := make([]PairedTest, len(groups))
	var pooled []float64
	var refused []string
	for g, qs := range groups {
		pt, err := pairedTest(qs, key)
		if err != nil {
			return c, nil, err
		}
		tests[g] = pt
		d, _ := gains(qs, key)
		pooled = append(pooled, d...)
		if pt.Refused != "" {
			where := "the test split"
			if names[g] != "" {
				where = names[g]
			}
			refused = append(refused, fmt.Sprintf("%s has %d test question%s", where, len(qs), plural(len(qs))))
		}
	}
	c.Questions = len(pooled)
	if len(pooled) > 0 {
		c.Gain = mean(pooled)
	}
	if len(refused) > 0 {
		c.Verdict = VerdictRefused
		c.Summary = fmt.Sprintf("no interval: %s; a paired interval needs at least %d per %s", strings.Join(refused, ", "),
			MinQuestions, map[bool]string{true: "fold", false: "split"}[len(groups) > 1])
		return c, tests, nil
	}
	iv, err := stats.PairedBootstrap(pooled, stats.Bootstrap{Seed: seed})
	if err != nil {
		return c, nil, err
	}
	c.Interval = &iv
	var worse []string
	for g, pt := range tests {
		if pt.PValue != nil && *pt.PValue < Alpha/float64(len(groups)) && pt.Gain < 0 {
			if names[g] != "" {
				c.WorseFolds = append(c.WorseFolds, g+1)
				worse = append(worse, fmt.Sprintf("%s (p = %s)", names[g], formatP(*pt.PValue)))
			} else {
				worse = append(worse, fmt.Sprintf("p = %s", formatP(*pt.PValue)))
			}
		}
	}
	ci := fmt.Sprintf("%.0f%% CI %s … %s", 100*iv.Level, signed(iv.Low), signed(iv.High))
	name := subj.Name
	than := ""
	if subj.Other != "" {
		than = " than " + subj.Other
	}
	switch {
	case len(worse) > 0 && names[0] != "":
		c.Verdict, c.Summary = VerdictWorse, fmt.Sprintf("%s is worse%s: %s", name, than, strings.Join(worse, ", "))
	case len(worse) > 0 || iv.High < 0:
		c.Verdict, c.Summary = VerdictWorse, fmt.Sprintf("%s is worse%s (%s)", name, than, ci)
		if len(worse) > 0 {
			c.Summary = fmt.Sprintf("%s is worse%s (%s; %s)", name, than, worse[0], ci)
		}
	case iv.Low > 0:
		c.Verdict, c.Summary = VerdictBetter, fmt.Sprintf("%s is better%s (%s)", name, than, ci)
	default:
		c.Verdict, c.Summary = VerdictNone, fmt.Sprintf("no significant difference (%s)", ci)
	}
	return c, tests, nil
}

// mean is the arithmetic mean (float64, left to right).
func mean(d []float64) float64 {
	s := 0.0
	for _, v := range d {
		s += v
	}
	return s / float64(len(d))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// signed prints a gain with 3 decimals and its sign, a true minus sign
// for negatives ("+0.004", "−0.012").
func signed(v float64) string {
	s := fmt.Sprintf("%+.3f", v)
	if strings.HasPrefix(s, "-") {
		return "−" + s[1:]
	}
	return s
}

// formatP prints a p-value to at most 4 decimals, trailing zeros trimmed, or
// "< 0.0001".
func formatP(p float64) string {
	if p < 1e-4 {
		return "< 0.0001"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", p), "0"), ".")
}

// compareHoldout fills the held-out split's per-question scores, its
// paired test and the comparison.
func (j *Job) compareHoldout(rep *Report, task dataset.IRTask, ids map[string]int, key string, base, tuned []trainer.QueryResult) error {
	qs, err := questionScores(task, ids, key, base, tuned)
	if err != nil {
		return err
	}
	c, tests, err := compareGroups([][]QuestionScore{qs}, []string{""}, key, j.Hyper.Seed, tunedSubject)
	if err != nil {
		return err
	}
	rep.Questions, rep.PairedTest, rep.Comparison = qs, &tests[0], &c
	j.logComparison(c)
	return nil
}

// logComparison logs the comparison on one line that SageMaker's metric
// definitions read (sagemaker.TrainingMetricDefinitions):
//
//	msg=comparison metric=ndcg@10 questions=120 gain=0.0170 ci_low=0.0040 ci_high=0.0310 resamples=10000 verdict=better sign=1 summary="…"
func (j *Job) logComparison(c Comparison) {
	args := []any{"metric", c.Metric, "questions", c.Questions, "gain", fmt.Sprintf("%.4f", c.Gain)}
	if c.Interval != nil {
		args = append(args, "ci_low", fmt.Sprintf("%.4f", c.Interval.Low), "ci_high", fmt.Sprintf("%.4f", c.Interval.High),
			"resamples", c.Interval.Resamples)
	}
	args = append(args, "verdict", c.Verdict, "sign", c.Sign(), "summary", c.Summary)
	j.log().Info("comparison", args...)
}

// printComparison ends a report's table: one row per fold (or the split)
// in the metric of record with its Wilcoxon p-value, the pooled gain with
// its interval, and the verdict line.
func printComparison(w io.Writer, rep Report) { printComparisonAs(w, rep, "base", "tuned", "split") }

// printComparisonAs is printComparison with the two models' column names
// and the name of a single split's row.
func printComparisonAs(w io.Writer, rep Report, base, tuned, split string) {
	c := rep.Comparison
	if c == nil {
		return
	}
	type row struct {
		name string
		qs   []QuestionScore
		test *PairedTest
	}
	var rows []row
	for _, f := range rep.Folds {
		rows = append(rows, row{fmt.Sprintf("fold %d", f.Fold), f.Questions, f.PairedTest})
	}
	if len(rows) == 0 {
		rows = append(rows, row{split, rep.Questions, rep.PairedTest})
	}
	key := c.Metric
	fmt.Fprintf(w, "\n%-7s %9s %10s %10s %8s %10s\n", "", "questions", base, tuned, "gain", "p")
	var all []QuestionScore
	for _, r := range rows {
		all = append(all, r.qs...)
		fmt.Fprintf(w, "%-7s %9d %10.4f %10.4f %+8.4f %10s\n", r.name, len(r.qs), meanOf(r.qs, key, false), meanOf(r.qs, key, true),
			meanOf(r.qs, key, true)-meanOf(r.qs, key, false), pCell(r.test))
	}
	if len(rows) > 1 {
		fmt.Fprintf(w, "%-7s %9d %10.4f %10.4f %+8.4f\n", "pooled", len(all), meanOf(all, key, false), meanOf(all, key, true), c.Gain)
	}
	fmt.Fprintf(w, "(%s per question, %s - %s; p: two-sided Wilcoxon signed-rank test)\n", key, tuned, base)
	if iv := c.Interval; iv != nil {
		fmt.Fprintf(w, "gain %+.4f over %d questions, %.0f%% CI %+.4f … %+.4f (paired bootstrap over questions, %d resamples, seed %d)\n",
			c.Gain, c.Questions, 100*iv.Level, iv.Low, iv.High, iv.Resamples, iv.Seed)
	}
	fmt.Fprintf(w, "verdict: %s\n", c.Summary)
}

// meanOf is the mean base (or tuned) score of qs in key.
func meanOf(qs []QuestionScore, key string, tuned bool) float64 {
	if len(qs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, q := range qs {
		if tuned {
			s += q.Tuned[key]
		} else {
			s += q.Base[key]
		}
	}
	return s / float64(len(qs))
}

func pCell(t *PairedTest) string {
	switch {
	case t == nil:
		return "-"
	case t.Refused != "":
		return "too few"
	case t.PValue == nil:
		return "no change"
	case *t.PValue < 1e-4:
		return "< 0.0001"
	}
	// Four decimals always, so that the column's decimal points line up.
	return fmt.Sprintf("%.4f", *t.PValue)
}
