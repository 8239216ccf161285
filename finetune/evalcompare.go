package finetune

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/trainer"
)

// ModelScores are one model's per-question results on an IR task: what
// `embtune eval --scores FILE` writes, and what `--compare` reads back.
type ModelScores struct {
	Model     string            `json:"model"`
	Data      string            `json:"data,omitempty"`
	Metrics   trainer.IRMetrics `json:"metrics"`
	Questions []ModelQuestion   `json:"questions"`
}

// ModelQuestion is one question's result under one model.
type ModelQuestion struct {
	// ID is the 1-based position of the question's first pair in the data.
	ID       int               `json:"id"`
	Question string            `json:"question"`
	Scores   trainer.IRMetrics `json:"scores"`
	// Rank is the 1-based rank of the first relevant answer, 0 when it is
	// not in the top 100.
	Rank int `json:"rank"`
}

// QuestionIDs numbers the distinct anchors of pairs by their first pair,
// from 1: the IDs that per-question scores carry.
func QuestionIDs(pairs []dataset.Pair) map[string]int { return questionIDs(pairs) }

// ScoreModel evaluates enc on task question by question.
func ScoreModel(ctx context.Context, name string, enc embedding.Encoder, task dataset.IRTask, ids map[string]int) (ModelScores, error) {
	ev, err := trainer.EvaluateQueries(ctx, enc, task, nil)
	if err != nil {
		return ModelScores{}, fmt.Errorf("%s: %w", name, err)
	}
	s := ModelScores{Model: name, Metrics: ev.Metrics, Questions: make([]ModelQuestion, len(task.Queries))}
	for i, q := range task.Queries {
		s.Questions[i] = ModelQuestion{ID: ids[q], Question: q, Scores: ev.Queries[i].Metrics, Rank: ev.Queries[i].Rank}
	}
	return s, nil
}

// WriteScores writes s as indented JSON, atomically.
func WriteScores(path string, s ModelScores) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// ReadScores reads what WriteScores wrote.
func ReadScores(path string) (ModelScores, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ModelScores{}, err
	}
	var s ModelScores
	if err := json.Unmarshal(b, &s); err != nil {
		return ModelScores{}, fmt.Errorf("%s: not a scores file of embtune eval --scores: %w", path, err)
	}
	if len(s.Questions) == 0 {
		return ModelScores{}, fmt.Errorf("%s: no per-question scores", path)
	}
	return s, nil
}

// CheckSameTask errors unless a and b hold the same questions in the same
// order: a paired comparison of scores on different tasks means nothing.
func CheckSameTask(a, b ModelScores) error {
	if len(a.Questions) != len(b.Questions) {
		return fmt.Errorf("%s and %s were evaluated on different tasks: %d questions against %d",
			a.Model, b.Model, len(a.Questions), len(b.Questions))
	}
	for i := range a.Questions {
		if qa, qb := a.Questions[i].Question, b.Questions[i].Question; qa != qb {
			return fmt.Errorf("%s and %s were evaluated on different tasks: question %d is %q in one and %q in the other",
				a.Model, b.Model, i+1, truncate(qa, 60), truncate(qb, 60))
		}
	}
	return nil
}

// ModelComparison is `embtune eval --model A --compare B`: A's gain over B
// question by question in the metric of record.
type ModelComparison struct {
	A, B       ModelScores
	Questions  []QuestionScore
	PairedTest PairedTest
	Comparison Comparison
}

// CompareModels compares a against b (gain = a - b) on the same task, with
// the paired bootstrap interval (seeded by seed) and the Wilcoxon test. It
// errors when they were scored on different tasks.
func CompareModels(a, b ModelScores, key string, seed uint64) (ModelComparison, error) {
	if err := CheckSameTask(a, b); err != nil {
		return ModelComparison{}, err
	}
	mc := ModelComparison{A: a, B: b, Questions: make([]QuestionScore, len(a.Questions))}
	for i, qa := range a.Questions {
		qb := b.Questions[i]
		for _, q := range []ModelQuestion{qa, qb} {
			if _, ok := q.Scores[key]; !ok {
				return ModelComparison{}, fmt.Errorf("question %d has no %s score", q.ID, key)
			}
		}
		pick := func(m trainer.IRMetrics) map[string]float64 {
			return map[string]float64{key: m[key], "ndcg@10": m["ndcg@10"]}
		}
		mc.Questions[i] = QuestionScore{ID: qa.ID, Question: qa.Question, Base: pick(qb.Scores), Tuned: pick(qa.Scores),
			BaseRank: qb.Rank, TunedRank: qa.Rank}
	}
	c, tests, err := compareGroups([][]QuestionScore{mc.Questions}, []string{""}, key, seed, Subject{Name: a.Model, Other: b.Model})
	if err != nil {
		return ModelComparison{}, err
	}
	mc.Comparison, mc.PairedTest = c, tests[0]
	return mc, nil
}

// PrintModelComparison prints both models' metrics side by side, then the
// paired comparison and its verdict.
func PrintModelComparison(w io.Writer, mc ModelComparison) error {
	fmt.Fprintf(w, "A = %s\nB = %s\n", mc.A.Model, mc.B.Model)
	if err := FormatTable(w, []string{"B", "A", "delta"}, map[string]trainer.IRMetrics{"A": mc.A.Metrics, "B": mc.B.Metrics}); err != nil {
		return err
	}
	printComparisonAs(w, Report{Questions: mc.Questions, PairedTest: &mc.PairedTest, Comparison: &mc.Comparison}, "B", "A", "task")
	return nil
}
