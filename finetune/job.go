// Package finetune is the application around the trainer library: one
// fine-tuning run (`embtune train`) that loads the pairs, holds out a split
// or runs k folds, evaluates the base model against the tuned one, exports
// the tuned model, and writes and prints the report.
package finetune

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
	"github.com/embtune/embtune/trainer"
)

// Job is one `embtune train`: load data, optionally hold out a split or run
// k folds and evaluate base against tuned, fine-tune, and export.
type Job struct {
	ModelDir  string
	DataPath  string
	OutputDir string
	// EvalSplit holds out this fraction for evaluation (0: none).
	EvalSplit float64
	// TestPath, if set, names separate held-out pairs: all of DataPath trains,
	// and TestPath's anchors are the evaluation queries.
	TestPath string
	// Folds > 1 runs k-fold evaluation, then trains the exported model on all data.
	Folds int
	// TrainPath, with Folds, names the pairs that train each fold and the
	// exported model instead of DataPath's (e.g. questions generated from
	// the documents): a fold is still evaluated on its DataPath questions
	// against every DataPath positive. TrainScope picks a fold's pairs:
	// TrainScopeAll (empty) or TrainScopeFold.
	TrainPath  string
	TrainScope string
	Hyper      trainer.HyperParameters
	Device     torch.Device
	// Threads is libtorch's intra-op thread count (0: all cores).
	Threads int
	// Pairs are (query, answer) pairs whose cosine is reported before and
	// after, as in the AWS write-up. Empty: the first three held-out pairs.
	Pairs [][2]string
	// CheckpointDir, CheckpointEvery and Resume are passed to trainer.Train.
	CheckpointDir   string
	CheckpointEvery int
	// MinCheckpointInterval and KeepCheckpoints are passed to trainer.Train (0: its defaults).
	MinCheckpointInterval time.Duration
	KeepCheckpoints       int
	Resume                bool
	// DeleteCheckpoints removes the checkpoints (trainer.RemoveCheckpoints)
	// once Run has succeeded; a failed or interrupted run keeps them for
	// --resume.
	DeleteCheckpoints bool
	Logger            *slog.Logger
	Progress          io.Writer
	// Group trains data-parallel across processes (see trainer.Options.Group).
	// All ranks train every fold; rank 0 alone evaluates, logs and writes the
	// output folder.
	Group               *distributed.Group
	GatherAcrossDevices bool
	// QueryPrompt and DocumentPrompt choose the prompts that anchors and
	// documents get in training and evaluation (see minilm.Options).
	QueryPrompt, DocumentPrompt hf.PromptChoice
}

// main reports whether this process writes outputs: always, unless it is a
// rank other than 0 of a group.
func (j *Job) main() bool { return j.Group == nil || j.Group.Main() }

func (j *Job) log() *slog.Logger {
	if j.Logger == nil || !j.main() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return j.Logger
}

func (j *Job) load(ctx context.Context) (*minilm.Model, error) {
	return minilm.Load(ctx, j.ModelDir, minilm.Options{Device: j.Device, Threads: j.Threads, MaxSeqLength: j.Hyper.MaxSeqLength,
		QueryPrompt: j.QueryPrompt, DocumentPrompt: j.DocumentPrompt})
}

// Run executes the job and writes the output folder.
func (j *Job) Run(ctx context.Context) (Report, error) {
	rep, err := j.run(ctx)
	if err != nil || !j.DeleteCheckpoints || j.CheckpointDir == "" || !j.main() {
		return rep, err
	}
	n, err := trainer.RemoveCheckpoints(j.CheckpointDir)
	if err != nil {
		return rep, err
	}
	j.log().Info("removed the checkpoints of the finished run", "dir", j.CheckpointDir, "checkpoints", n)
	return rep, nil
}

func (j *Job) run(ctx context.Context) (Report, error) {
	pairs, err := dataset.Load(j.DataPath)
	if err != nil {
		return Report{}, err
	}
	modes := 0
	for _, on := range []bool{j.EvalSplit > 0, j.Folds > 1, j.TestPath != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return Report{}, fmt.Errorf("use one of an eval split, folds or test data")
	}
	var trainPairs []dataset.Pair
	if j.TrainPath != "" {
		if j.Folds <= 1 {
			return Report{}, fmt.Errorf("separate training data needs folds: the folds of the data are the test questions")
		}
		if j.TrainScope == "" {
			j.TrainScope = TrainScopeAll
		}
		if trainPairs, err = dataset.Load(j.TrainPath); err != nil {
			return Report{}, fmt.Errorf("training data: %w", err)
		}
		// Checked again per fold; the exported model trains on all of it.
		if _, _, err := trainer.SplitValidation(trainPairs, j.Hyper); err != nil {
			return Report{}, fmt.Errorf("training data: %w", err)
		}
	}
	if j.TestPath != "" {
		test, err := dataset.Load(j.TestPath)
		if err != nil {
			return Report{}, fmt.Errorf("test data: %w", err)
		}
		return j.runHoldout(ctx, append(append([]dataset.Pair(nil), pairs...), test...), dataset.Split{Train: pairs, Test: test}, test,
			map[string]any{"mode": "test-data", "test_path": j.TestPath, "train": len(pairs), "test": len(test)})
	}
	if _, _, err := trainer.SplitValidation(pairs, j.Hyper); err != nil && j.Folds <= 1 && j.EvalSplit <= 0 && j.TrainPath == "" {
		return Report{}, err
	}
	if err := j.mkdirOutput(); err != nil {
		return Report{}, err
	}
	j.removeStaleTemps()
	rep := Report{Hyper: j.Hyper, Output: map[string]string{}}
	train := pairs
	switch {
	case j.Folds > 1:
		if trainPairs != nil {
			train = trainPairs
		}
		final := trainPairs
		if j.Resume {
			final = nil // an interrupted final training resumes from its checkpoints
		}
		tuned, res, err := j.runFolds(ctx, pairs, trainPairs, final, &rep)
		if err != nil {
			return rep, err
		}
		if tuned != nil {
			defer tuned.Close()
			return rep, j.exportShared(ctx, tuned, res, &rep)
		}
	case j.EvalSplit > 0:
		split, err := dataset.TrainTestSplit(pairs, j.EvalSplit, j.Hyper.Seed)
		if err != nil {
			return rep, err
		}
		if _, _, err := trainer.SplitValidation(split.Train, j.Hyper); err != nil {
			return rep, err
		}
		if err := j.writeSplit(filepath.Join(j.OutputDir, "split"), split); err != nil {
			return rep, err
		}
		return j.runHoldout(ctx, pairs, split, pairs, map[string]any{"mode": "holdout", "test_fraction": j.EvalSplit,
			"seed": j.Hyper.Seed, "train": len(split.Train), "test": len(split.Test)})
	default:
		rep.Split = map[string]any{"mode": "none", "train": len(pairs)}
	}

	m, err := j.load(ctx)
	if err != nil {
		return rep, err
	}
	defer m.Close()
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, nil); err != nil {
		return rep, err
	}
	res, err := trainer.Train(ctx, m, train, j.Hyper, j.trainOptions())
	if err != nil {
		return rep, err
	}
	rep.Training = trainingReport(res)
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, rep.Pairs); err != nil {
		return rep, err
	}
	return rep, j.export(ctx, m, res, &rep)
}

// runHoldout evaluates base, trains on split.Train, evaluates tuned on the
// IR task of split.Test against every positive in all, and exports. The
// test questions are numbered by their first pair in source.
func (j *Job) runHoldout(ctx context.Context, all []dataset.Pair, split dataset.Split, source []dataset.Pair, info map[string]any) (Report, error) {
	log := j.log()
	rep := Report{Hyper: j.Hyper, Output: map[string]string{}, Split: info}
	if err := j.mkdirOutput(); err != nil {
		return rep, err
	}
	j.removeStaleTemps()
	if len(j.Pairs) == 0 {
		for _, p := range split.Test[:min(3, len(split.Test))] {
			j.Pairs = append(j.Pairs, [2]string{p.Anchor, p.Positive})
		}
	}
	task := dataset.NewIRTask(all, split.Test)
	m, err := j.load(ctx)
	if err != nil {
		return rep, err
	}
	defer m.Close()
	key, err := trainer.MetricKey(j.Hyper.MetricForBestModel)
	if err != nil {
		return rep, err
	}
	var baseDims, tunedDims []trainer.IRMetrics
	var baseQ, tunedQ []trainer.QueryResult
	if rep.Base, baseDims, baseQ, err = j.evaluateDims(ctx, m, task); err != nil {
		return rep, err
	}
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, nil); err != nil {
		return rep, err
	}
	log.Info("base model", "ndcg@10", fmt.Sprintf("%.4f", rep.Base["ndcg@10"]), "mrr@10", fmt.Sprintf("%.4f", rep.Base["mrr@10"]),
		"accuracy@1", fmt.Sprintf("%.4f", rep.Base["accuracy@1"]))
	res, err := trainer.Train(ctx, m, split.Train, j.Hyper, j.trainOptions())
	if err != nil {
		return rep, err
	}
	rep.Training = trainingReport(res)
	if rep.Tuned, tunedDims, tunedQ, err = j.evaluateDims(ctx, m, task); err != nil {
		return rep, err
	}
	rep.Matryoshka = j.dimMetrics(m.Dim(), baseDims, tunedDims)
	if rep.Pairs, err = j.pairCosines(ctx, m, j.Pairs, rep.Pairs); err != nil {
		return rep, err
	}
	log.Info("tuned model", "ndcg@10", fmt.Sprintf("%.4f", rep.Tuned["ndcg@10"]), "mrr@10", fmt.Sprintf("%.4f", rep.Tuned["mrr@10"]),
		"accuracy@1", fmt.Sprintf("%.4f", rep.Tuned["accuracy@1"]))
	if j.main() {
		if err := j.compareHoldout(&rep, task, questionIDs(source), key, baseQ, tunedQ); err != nil {
			return rep, err
		}
	}
	return rep, j.export(ctx, m, res, &rep)
}

// removeStaleTemps removes what a killed earlier run left in the output
// folder (temporary files of up to the model's size), and says so.
func (j *Job) removeStaleTemps() {
	removed, err := minilm.RemoveStaleTemps(j.OutputDir)
	if len(removed) > 0 {
		j.log().Info("removed temporary files of an earlier run", "files", len(removed), "first", removed[0])
	}
	if err != nil {
		j.log().Warn("removing temporary files of an earlier run", "err", err)
	}
}

// exportShared exports the model that the folds trained on the very pairs
// the exported model trains on (--train-data with scope all), instead of
// training it again: the same pairs, settings and seed give the same
// model. The pairs' cosines before training come from the base model.
func (j *Job) exportShared(ctx context.Context, tuned *minilm.Model, res trainer.Result, rep *Report) error {
	j.log().Info("the exported model trains on the pairs every fold trained on: the folds' model is exported")
	base, err := j.load(ctx)
	if err != nil {
		return err
	}
	rep.Pairs, err = j.pairCosines(ctx, base, j.Pairs, nil)
	base.Close()
	if err != nil {
		return err
	}
	rep.Training = trainingReport(res)
	if rep.Pairs, err = j.pairCosines(ctx, tuned, j.Pairs, rep.Pairs); err != nil {
		return err
	}
	return j.export(ctx, tuned, res, rep)
}

func (j *Job) trainOptions() trainer.Options {
	return trainer.Options{CheckpointDir: j.CheckpointDir, CheckpointEvery: j.CheckpointEvery, Resume: j.Resume,
		MinCheckpointInterval: j.MinCheckpointInterval, KeepCheckpoints: j.KeepCheckpoints,
		Logger: j.log(), Progress: j.Progress, Group: j.Group, GatherAcrossDevices: j.GatherAcrossDevices}
}

// Rank 0 alone computes the pairs' cosines; the other ranks skip them.
func (j *Job) pairCosines(ctx context.Context, m *minilm.Model, pairs [][2]string, before []PairCosine) ([]PairCosine, error) {
	if !j.main() {
		return nil, nil
	}
	return pairCosines(ctx, m, pairs, before)
}
