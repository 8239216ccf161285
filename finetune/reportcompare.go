package finetune

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// ReportComparison is `embtune compare A/eval.json B/eval.json`: the tuned
// model of training run A against the tuned model of run B, question by
// question on the same held-out questions (the same folds, or the same
// split), e.g. tuned on generated pairs against tuned on real pairs.
type ReportComparison struct {
	A, B string
	// Report holds, per fold (or for the split), B's tuned scores as Base
	// and A's as Tuned, the paired tests and the comparison.
	Report Report
}

// ReadReport reads a training run's eval.json.
func ReadReport(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{}, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return Report{}, fmt.Errorf("%s: not an eval.json of embtune train: %w", path, err)
	}
	return r, nil
}

// CompareReports compares the tuned model of a (named nameA) against the
// tuned model of b (nameB), gain = a - b, grouped as the folds are, with
// the paired bootstrap interval seeded by seed. It errors unless both
// reports hold per-question scores of the same questions in the same
// folds and order: a paired comparison of different tasks means nothing.
func CompareReports(a, b Report, nameA, nameB, key string, seed uint64) (ReportComparison, error) {
	ga, fa, err := reportGroups(a, nameA)
	if err != nil {
		return ReportComparison{}, err
	}
	gb, fb, err := reportGroups(b, nameB)
	if err != nil {
		return ReportComparison{}, err
	}
	if len(ga) != len(gb) || (fa == nil) != (fb == nil) {
		return ReportComparison{}, fmt.Errorf("%s has %d folds and %s %d: not the same held-out questions", nameA, len(fa), nameB, len(fb))
	}
	groups := make([][]QuestionScore, len(ga))
	names := make([]string, len(ga))
	for g := range ga {
		if fa != nil && fa[g] != fb[g] {
			return ReportComparison{}, fmt.Errorf("%s and %s were evaluated on different folds: fold %d against fold %d", nameA, nameB, fa[g], fb[g])
		}
		if len(ga[g]) != len(gb[g]) {
			return ReportComparison{}, fmt.Errorf("%s and %s were evaluated on different questions: %s has %d questions against %d",
				nameA, nameB, groupName(fa, g), len(ga[g]), len(gb[g]))
		}
		groups[g] = make([]QuestionScore, len(ga[g]))
		for i, qa := range ga[g] {
			qb := gb[g][i]
			if qa.Question != qb.Question {
				return ReportComparison{}, fmt.Errorf("%s and %s were evaluated on different questions: question %d of %s is %q in one and %q in the other",
					nameA, nameB, i+1, groupName(fa, g), truncate(qa.Question, 60), truncate(qb.Question, 60))
			}
			for _, m := range []map[string]float64{qa.Tuned, qb.Tuned} {
				if _, ok := m[key]; !ok {
					return ReportComparison{}, fmt.Errorf("question %d of %s has no %s score (the report's metric of record differs)", qa.ID, groupName(fa, g), key)
				}
			}
			groups[g][i] = QuestionScore{ID: qa.ID, Question: qa.Question, Base: qb.Tuned, Tuned: qa.Tuned,
				BaseRank: qb.TunedRank, TunedRank: qa.TunedRank}
		}
		if fa != nil {
			names[g] = fmt.Sprintf("fold %d", fa[g])
		}
	}
	c, tests, err := compareGroups(groups, names, key, seed, Subject{Name: nameA, Other: nameB})
	if err != nil {
		return ReportComparison{}, err
	}
	rc := ReportComparison{A: nameA, B: nameB, Report: Report{Comparison: &c}}
	if fa == nil {
		rc.Report.Questions, rc.Report.PairedTest = groups[0], &tests[0]
		return rc, nil
	}
	for g := range groups {
		rc.Report.Folds = append(rc.Report.Folds, FoldReport{Fold: fa[g], Test: len(groups[g]), Questions: groups[g], PairedTest: &tests[g]})
	}
	return rc, nil
}

// reportGroups returns a report's per-question scores, one group per fold
// (with the fold numbers) or one group for a held-out split (nil folds).
func reportGroups(r Report, name string) ([][]QuestionScore, []int, error) {
	if len(r.Folds) > 0 {
		groups := make([][]QuestionScore, len(r.Folds))
		folds := make([]int, len(r.Folds))
		for i, f := range r.Folds {
			if len(f.Questions) == 0 {
				return nil, nil, fmt.Errorf("%s: fold %d has no per-question scores", name, f.Fold)
			}
			groups[i], folds[i] = f.Questions, f.Fold
		}
		return groups, folds, nil
	}
	if len(r.Questions) == 0 {
		return nil, nil, fmt.Errorf("%s: no per-question scores (a run with --folds, --eval-split or --test-data writes them)", name)
	}
	return [][]QuestionScore{r.Questions}, nil, nil
}

func groupName(folds []int, g int) string {
	if folds == nil {
		return "the split"
	}
	return fmt.Sprintf("fold %d", folds[g])
}

// PrintReportComparison prints each fold's means under both runs with its
// Wilcoxon p-value, the pooled gain A − B with its interval, and the
// verdict.
func PrintReportComparison(w io.Writer, rc ReportComparison) {
	fmt.Fprintf(w, "A = %s (tuned)\nB = %s (tuned)\n", rc.A, rc.B)
	printComparisonAs(w, rc.Report, "B", "A", "split")
}
