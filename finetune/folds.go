package finetune

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/trainer"
)

// runFolds evaluates base and tuned on each of k folds, each fold starting
// from the base weights, and fills the means and standard deviations.
// With separate training pairs (trainPairs not nil), a fold's held-out
// questions are still its share of pairs, and it trains on trainPairs as
// j.TrainScope picks them.
func (j *Job) runFolds(ctx context.Context, pairs, trainPairs []dataset.Pair, rep *Report) error {
	folds, err := dataset.KFold(pairs, j.Folds, j.Hyper.Seed)
	if err != nil {
		return err
	}
	dropped := make([]int, len(folds))
	if trainPairs != nil {
		for i := range folds {
			if folds[i].Train, dropped[i], err = foldTrain(trainPairs, folds[i].Test, j.TrainScope); err != nil {
				return fmt.Errorf("fold %d: %w", i+1, err)
			}
			if len(folds[i].Train) == 0 {
				return fmt.Errorf("fold %d: no training pairs left in %s", i+1, j.TrainPath)
			}
		}
	}
	// A validation split too large for some fold fails here, before any training.
	for i, f := range folds {
		if _, _, err := trainer.SplitValidation(f.Train, j.Hyper); err != nil {
			return fmt.Errorf("fold %d: %w", i+1, err)
		}
	}
	rep.Split = map[string]any{"mode": "kfold", "folds": j.Folds, "seed": j.Hyper.Seed, "pairs": len(pairs)}
	if trainPairs != nil {
		rep.Split["train_path"], rep.Split["train_pairs"], rep.Split["train_scope"] = j.TrainPath, len(trainPairs), j.TrainScope
	}
	key, err := trainer.MetricKey(j.Hyper.MetricForBestModel)
	if err != nil {
		return err
	}
	ids := questionIDs(pairs)
	for i, f := range folds {
		m, err := j.load(ctx)
		if err != nil {
			return err
		}
		if err := j.writeSplit(filepath.Join(j.OutputDir, "folds", fmt.Sprintf("fold-%d", i+1)), f); err != nil {
			m.Close()
			return err
		}
		task := dataset.NewIRTask(pairs, f.Test)
		fr := FoldReport{Fold: i + 1, Train: len(f.Train), Test: len(f.Test), TrainDropped: dropped[i]}
		var baseDims, tunedDims []trainer.IRMetrics
		var baseQ, tunedQ []trainer.QueryResult
		if fr.Base, baseDims, baseQ, err = j.evaluateDims(ctx, m, task); err == nil {
			// Fold runs never checkpoint or resume: each is short and starts from the base model.
			var res trainer.Result
			res, err = trainer.Train(ctx, m, f.Train, j.Hyper, trainer.Options{Logger: j.log(), Progress: j.Progress,
				Group: j.Group, GatherAcrossDevices: j.GatherAcrossDevices})
			fr.Validation = res.Validation
		}
		if err == nil {
			fr.Tuned, tunedDims, tunedQ, err = j.evaluateDims(ctx, m, task)
		}
		if err == nil && j.main() {
			fr.Questions, err = questionScores(task, ids, key, baseQ, tunedQ)
		}
		fr.Matryoshka = j.dimMetrics(m.Dim(), baseDims, tunedDims)
		m.Close()
		if err != nil {
			return fmt.Errorf("fold %d: %w", i+1, err)
		}
		logArgs := []any{"fold", i + 1, "train", fr.Train, "base_ndcg@10", fr.Base["ndcg@10"], "tuned_ndcg@10", fr.Tuned["ndcg@10"]}
		if j.main() {
			pt, err := pairedTest(fr.Questions, key)
			if err != nil {
				return fmt.Errorf("fold %d: %w", i+1, err)
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
			return err
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
	return nil
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
