package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/finetune"
	"github.com/embtune/embtune/trainer"
)

// compareFlags are eval's per-question flags: --compare a second model (or
// the scores another eval wrote) question by question, --scores to write
// this model's per-question scores, --metric the metric compared.
type compareFlags struct {
	compare, scores, metric string
}

func registerCompare(fs *flag.FlagSet) *compareFlags {
	c := &compareFlags{}
	fs.StringVar(&c.compare, "compare", "", "compare --model against this model folder (or a --scores file of an earlier eval on the same task) question by question: the paired gain with its 95% bootstrap interval, the Wilcoxon p-value and a verdict")
	fs.StringVar(&c.scores, "scores", "", "write --model's per-question scores (id, question, every metric, rank) to this JSON file")
	fs.StringVar(&c.metric, "metric", "ndcg@10", "the metric --compare tests (an IR metric key, e.g. ndcg@10, mrr@10)")
	return c
}

func (c *compareFlags) active() bool { return c.compare != "" || c.scores != "" }

// run evaluates enc (the --model, possibly remote) on the task question by
// question, writes --scores and compares against --compare.
func (c *compareFlags) run(ctx context.Context, stdout io.Writer, mf modelFlags, enc embedding.Encoder, truncateDim int,
	data string, pairs, test []dataset.Pair, seed uint64) error {
	key, err := trainer.MetricKey(c.metric)
	if err != nil {
		return usageError("--metric: %v", err)
	}
	task := dataset.NewIRTask(pairs, test)
	ids := finetune.QuestionIDs(pairs)
	a, err := finetune.ScoreModel(ctx, mf.dir, enc, task, ids)
	if err != nil {
		return err
	}
	a.Data = data
	if c.scores != "" {
		if err := finetune.WriteScores(c.scores, a); err != nil {
			return err
		}
	}
	if c.compare == "" {
		return finetune.FormatTable(stdout, []string{"model"}, map[string]trainer.IRMetrics{"model": a.Metrics})
	}
	var b finetune.ModelScores
	if strings.HasSuffix(c.compare, ".json") {
		if b, err = finetune.ReadScores(c.compare); err != nil {
			return err
		}
	} else {
		other := mf
		other.dir = c.compare
		m, err := other.load(ctx)
		if err != nil {
			return err
		}
		defer m.Close()
		encB, err := truncating(m, truncateDim, m.Dim())
		if err != nil {
			return err
		}
		if b, err = finetune.ScoreModel(ctx, c.compare, encB, task, ids); err != nil {
			return err
		}
	}
	mc, err := finetune.CompareModels(a, b, key, seed)
	if err != nil {
		return err
	}
	return finetune.PrintModelComparison(stdout, mc)
}
