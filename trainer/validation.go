package trainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/embtune/embtune/dataset"
)

// Evaluation strategies, transformers' IntervalStrategy values.
const (
	EvalEpoch = "epoch"
	EvalSteps = "steps"
	EvalNo    = "no"
)

// DefaultValidationSplit is the default preset's validation fraction. On
// the Debian FAQ folds (96 training pairs) it holds out 19 questions and
// leaves 77 to train (3 batches of 32 an epoch); on the Bedrock folds (68)
// 14 and 54. Fewer than about 15 queries make NDCG@10 move by 0.05 with a
// single question, pure noise next to the gains being chosen between;
// holding out more starves training of the pairs that make the gain (30%
// would leave Bedrock 48 pairs, one full batch an epoch). The validation
// corpus is every distinct positive of the training pool, not only the
// validation answers, so the ranking task is as hard as the test fold's and
// does not saturate at 1.0.
const DefaultValidationSplit = 0.2

// validationSeedOffset separates the validation shuffle from the fold
// shuffle: both are permutations by seed, and the same seed on a fold's
// training pairs would otherwise correlate with how the folds were cut.
const validationSeedOffset = 0x7a11d

// validateValidation checks the validation, evaluation and WiSE-FT settings.
func (h HyperParameters) validateValidation() error {
	if math.IsNaN(h.ValidationSplit) || h.ValidationSplit < 0 || h.ValidationSplit >= 1 {
		return fmt.Errorf("validation split %v is not in [0, 1) (0 disables it)", h.ValidationSplit)
	}
	switch h.EvalStrategy {
	case "", EvalEpoch, EvalNo:
	case EvalSteps:
		if h.EvalSteps < 1 {
			return errors.New("eval strategy steps needs --eval-steps of at least 1")
		}
	default:
		return fmt.Errorf("unknown eval strategy %q (want epoch, steps or no)", h.EvalStrategy)
	}
	if h.EvalSteps < 0 {
		return errors.New("eval steps must not be negative")
	}
	if _, err := MetricKey(h.MetricForBestModel); err != nil {
		return err
	}
	if _, _, err := ParseWiseFT(h.WiseFT); err != nil {
		return err
	}
	if h.ValidationSplit > 0 && h.LoadBestModelAtEnd && h.evalStrategy() == EvalNo {
		return errors.New("load best model at end needs evaluations: set --eval-strategy epoch or steps")
	}
	return nil
}

func (h HyperParameters) evalStrategy() string {
	if h.EvalStrategy == "" {
		return EvalEpoch
	}
	return h.EvalStrategy
}

// validating reports whether a run holds out a validation split.
func (h HyperParameters) validating() bool { return h.ValidationSplit > 0 }

// MetricKey returns the IRMetrics key a --metric-for-best-model names:
// "ndcg@10", "mrr@10", "map@100", "accuracy@1", "recall@10", … Case does not
// matter, and sentence-transformers' prefixed keys ("eval_…_cosine_ndcg@10")
// name the same metric. Empty means ndcg@10.
func MetricKey(name string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	if key == "" {
		return "ndcg@10", nil
	}
	if i := strings.LastIndex(key, "cosine_"); i >= 0 {
		key = key[i+len("cosine_"):]
	}
	known := irMetricNames(DefaultIRConfig())
	if !slices.Contains(known, key) {
		return "", fmt.Errorf("unknown metric for best model %q (want one of %s)", name, strings.Join(known, ", "))
	}
	return key, nil
}

func irMetricNames(c IRConfig) []string {
	var out []string
	for _, f := range []struct {
		name string
		ks   []int
	}{{"accuracy", c.AccuracyAtK}, {"precision", c.PrecisionRecallAtK}, {"recall", c.PrecisionRecallAtK},
		{"mrr", c.MRRAtK}, {"ndcg", c.NDCGAtK}, {"map", c.MAPAtK}} {
		for _, k := range f.ks {
			out = append(out, f.name+"@"+strconv.Itoa(k))
		}
	}
	return out
}

// ParseWiseFT reads a --wise-ft value: "off" (or empty), "auto", or a fixed
// α in [0, 1]. auto reports whether α is chosen on the validation split.
func ParseWiseFT(s string) (alpha float64, auto bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off":
		return 1, false, nil
	case "auto":
		return 0, true, nil
	}
	a, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(a) || a < 0 || a > 1 {
		return 0, false, fmt.Errorf("wise-ft %q: want auto, off, or an α in [0, 1]", s)
	}
	return a, false, nil
}

// SplitValidation carves hp.ValidationSplit of pairs out as the validation
// split, deterministically by hp.Seed (dataset.TrainTestSplit's shuffle).
// Callers pass training pairs only, never a test fold. Without a split it
// returns pairs unchanged. It is an error when what is left to train is
// smaller than one batch.
func SplitValidation(pairs []dataset.Pair, hp HyperParameters) (train, validation []dataset.Pair, err error) {
	if !hp.validating() {
		return pairs, nil, nil
	}
	s, err := dataset.TrainTestSplit(pairs, hp.ValidationSplit, hp.Seed+validationSeedOffset)
	if err != nil {
		return nil, nil, fmt.Errorf("validation split: %w", err)
	}
	if len(s.Train) < hp.BatchSize {
		return nil, nil, fmt.Errorf("validation split %v leaves %d training pairs, fewer than a batch of %d: lower --validation-split or --batch-size",
			hp.ValidationSplit, len(s.Train), hp.BatchSize)
	}
	return s.Train, s.Test, nil
}

// ValidationTask is the IR task of a validation split: its anchors are the
// queries, and the corpus is every distinct positive of the training pool
// (the training pairs and the validation pairs), so a validation question
// competes with every answer the model was trained on.
func ValidationTask(pool, validation []dataset.Pair) dataset.IRTask {
	return dataset.NewIRTask(pool, validation)
}
