package main

import (
	"context"
	"io"

	"github.com/embtune/embtune/finetune"
	"github.com/embtune/embtune/trainer"
)

// runCompare is `embtune compare A/eval.json B/eval.json`: the tuned model
// of training run A against that of run B on the same held-out questions,
// question by question (e.g. tuned on generated pairs against tuned on the
// real pairs, both with --folds 5 --seed 42 on the same --data).
func runCompare(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("compare")
	metric := fs.String("metric", "ndcg@10", "the metric compared (an IR metric key that both reports' per-question scores hold: ndcg@10 or their metric of record)")
	seed := fs.Uint64("seed", 42, "seed of the paired bootstrap interval")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("give two training reports: embtune compare A/eval.json B/eval.json")
	}
	key, err := trainer.MetricKey(*metric)
	if err != nil {
		return usageError("--metric: %v", err)
	}
	var reps [2]finetune.Report
	for i, p := range pos {
		if reps[i], err = finetune.ReadReport(p); err != nil {
			return err
		}
	}
	rc, err := finetune.CompareReports(reps[0], reps[1], pos[0], pos[1], key, *seed)
	if err != nil {
		return err
	}
	finetune.PrintReportComparison(stdout, rc)
	return nil
}
