package finetune

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/trainer"
)

// runFolds evaluates base and tuned on each of k folds, each fold starting
// from the base weights, and fills the means and standard deviations.
// With separate training pairs (trainPairs not nil), a fold's held-out
// questions are still its share of pairs, and it trains on trainPairs as
// j.TrainScope picks them.
//
// Folds whose training pairs are the same (--train-data-scope all: every
// fold trains on the whole --train-data file) would train the same model
// with the same settings and seed, so it is trained once, by the first of
// them, and tested on each one's questions. When the exported model trains
// on those pairs too (final), runFolds returns that model and its result
// for the export, and the caller closes it; otherwise it returns nil.
func (j *Job) runFolds(ctx context.Context, pairs, trainPairs, final []dataset.Pair, rep *Report) (*minilm.Model, trainer.Result, error) {
	m, res, err := j.runFoldsShared(ctx, pairs, trainPairs, final, rep)
	if err != nil && m != nil {
		m.Close()
		m = nil
	}
	return m, res, err
}

func (j *Job) runFoldsShared(ctx context.Context, pairs, trainPairs, final []dataset.Pair, rep *Report) (shared *minilm.Model, sharedRes trainer.Result, err error) {
	folds, err := dataset.KFold(pairs, j.Folds, j.Hyper.Seed)
	if err != nil {
		return nil, trainer.Result{}, err
	}
	var sharedTrain []dataset.Pair
	dropped := make([]int, len(folds))
	if trainPairs != nil {
		for i := range folds {
			if folds[i].Train, dropped[i], err = foldTrain(trainPairs, folds[i].Test, j.TrainScope); err != nil {
				return shared, sharedRes, fmt.Errorf("fold %d: %w", i+1, err)
			}
			if len(folds[i].Train) == 0 {
				return shared, sharedRes, fmt.Errorf("fold %d: no training pairs left in %s", i+1, j.TrainPath)
			}
		}
	}
	// A validation split too large for some fold fails here, before any training.
	for i, f := range folds {
		if _, _, err := trainer.SplitValidation(f.Train, j.Hyper); err != nil {
			return shared, sharedRes, fmt.Errorf("fold %d: %w", i+1, err)
		}
	}
	rep.Split = map[string]any{"mode": "kfold", "folds": j.Folds, "seed": j.Hyper.Seed, "pairs": len(pairs)}
	if trainPairs != nil {
		rep.Split["train_path"], rep.Split["train_pairs"], rep.Split["train_scope"] = j.TrainPath, len(trainPairs), j.TrainScope
	}
	key, err := trainer.MetricKey(j.Hyper.MetricForBestModel)
	if err != nil {
		return shared, sharedRes, err
	}
	ids := questionIDs(pairs)
	for i, f := range folds {
		m, err := j.load(ctx)
		if err != nil {
			return shared, sharedRes, err
		}
		if err := j.writeSplit(filepath.Join(j.OutputDir, "folds", fmt.Sprintf("fold-%d", i+1)), f); err != nil {
			m.Close()
			return shared, sharedRes, err
		}
		task := dataset.NewIRTask(pairs, f.Test)
		fr := FoldReport{Fold: i + 1, Train: len(f.Train), Test: len(f.Test), TrainDropped: dropped[i]}
		var baseDims, tunedDims []trainer.IRMetrics
		var baseQ, tunedQ []trainer.QueryResult
		tuned := m
		if fr.Base, baseDims, baseQ, err = j.evaluateDims(ctx, m, task); err == nil {
			if shared != nil && samePairs(f.Train, sharedTrain) {
				tuned = shared
				fr.Validation = sharedRes.Validation
				j.log().Info("fold trains on the same pairs as an earlier fold: its model is tested again", "fold", i+1)
			} else {
				if shared != nil {
					shared.Close()
					shared = nil
				}
				// Fold runs never checkpoint or resume: each is short and starts from the base model.
				var res trainer.Result
				res, err = trainer.Train(ctx, m, f.Train, j.Hyper, trainer.Options{Logger: j.log(), Progress: j.Progress,
					Group: j.Group, GatherAcrossDevices: j.GatherAcrossDevices})
				fr.Validation = res.Validation
				if err == nil && (samePairs(f.Train, final) || slices.ContainsFunc(folds[i+1:], func(g dataset.Split) bool {
					return samePairs(g.Train, f.Train)
				})) {
					shared, sharedRes, sharedTrain = m, res, f.Train
				}
			}
		}
		if err == nil {
			fr.Tuned, tunedDims, tunedQ, err = j.evaluateDims(ctx, tuned, task)
		}
		if err == nil && j.main() {
			fr.Questions, err = questionScores(task, ids, key, baseQ, tunedQ)
		}
		fr.Matryoshka = j.dimMetrics(m.Dim(), baseDims, tunedDims)
		if m != shared {
			m.Close()
		}
		if err != nil {
			return shared, sharedRes, fmt.Errorf("fold %d: %w", i+1, err)
		}
		logArgs := []any{"fold", i + 1, "train", fr.Train, "base_ndcg@10", fr.Base["ndcg@10"], "tuned_ndcg@10", fr.Tuned["ndcg@10"]}
		if j.main() {
			pt, err := pairedTest(fr.Questions, key)
			if err != nil {
				return shared, sharedRes, fmt.Errorf("fold %d: %w", i+1, err)
			}
			if pt.PValue != nil {
				logArgs = append(logArgs, "p_value", *pt.PValue)
			}
		}
		j.log().Info("fold", logArgs...)
		rep.Folds = append(rep.Folds, fr)
	}
	if j.main() {
		groups := make([][]QuestionScore, len(rep.Folds))
		names := make([]string, len(rep.Folds))
		for i, f := range rep.Folds {
			groups[i], names[i] = f.Questions, fmt.Sprintf("fold %d", f.Fold)
		}
		c, tests, err := compareGroups(groups, names, key, j.Hyper.Seed, tunedSubject)
		if err != nil {
			return shared, sharedRes, err
		}
		for i := range rep.Folds {
			rep.Folds[i].PairedTest = &tests[i]
		}
		rep.Comparison = &c
		j.logComparison(c)
	}
	rep.Base, rep.BaseStd = meanStd(rep.Folds, func(f FoldReport) trainer.IRMetrics { return f.Base })
	rep.Tuned, rep.TunedStd = meanStd(rep.Folds, func(f FoldReport) trainer.IRMetrics { return f.Tuned })
	rep.Matryoshka = meanDimMetrics(rep.Folds)
	return shared, sharedRes, nil
}

// samePairs reports whether a and b are the same pairs in the same order.
func samePairs(a, b []dataset.Pair) bool {
	return slices.EqualFunc(a, b, func(p, q dataset.Pair) bool {
		return p.Anchor == q.Anchor && p.Positive == q.Positive && slices.Equal(p.Negatives, q.Negatives)
	})
}

// meanStd is the mean and the sample standard deviation over the folds of
// each metric that get returns.
func meanStd(folds []FoldReport, get func(FoldReport) trainer.IRMetrics) (trainer.IRMetrics, trainer.IRMetrics) {
	mean, std := trainer.IRMetrics{}, trainer.IRMetrics{}
	for k := range get(folds[0]) {
		var s, ss float64
		for _, f := range folds {
			v := get(f)[k]
			s += v
			ss += v * v
		}
		n := float64(len(folds))
		mean[k] = s / n
		// Sample standard deviation (n-1), as one reports across folds.
		if len(folds) > 1 {
			std[k] = math.Sqrt(max(0, (ss-s*s/n)/(n-1)))
		}
	}
	return mean, std
}
