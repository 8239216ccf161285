package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// The training loop in phases, as transformers' Trainer delegates to named
// steps (training_step, _maybe_log_save_evaluate, _save_checkpoint): set up
// (setUp, prepare), resume, plan, one step per batch (a stepFunc: in this
// process or sharded across a group, each embedding plainly or cached, see
// step.go), evaluate and select, checkpoint, finish.

// stepFunc runs one optimizer update on a batch and returns the loss and
// the gradient norm before clipping.
type stepFunc func(batch []int, lr float64) (loss, norm float64, err error)

// loop is the state of Train between its phases.
type loop struct {
	m    *minilm.Model
	hp   HyperParameters
	opts Options
	log  *slog.Logger
	// pool is every pair Train was handed; pairs the training share (with
	// mined negatives), valPairs the validation split.
	pool, pairs, valPairs []dataset.Pair
	pg                    *torch.ProcessGroup
	r                     *run
	step                  stepFunc
	base                  map[string]hf.RawTensor // for a fixed WiSE-FT α without validation
	st                    checkpointState
	comm                  *CommStats
	resumedFrom           string
	epochs                [][][]int
	sched                 LinearSchedule
	bar                   *progressBar
	start, lastSave       time.Time
	pairsDone             int
}

// Train fine-tunes m in place on pairs. The model's MaxSeqLength truncates
// every text. When ctx ends, Train saves a checkpoint (if CheckpointDir is
// set) and returns an error wrapping ErrInterrupted.
func Train(ctx context.Context, m *minilm.Model, pairs []dataset.Pair, hp HyperParameters, opts Options) (Result, error) {
	l, err := setUp(ctx, m, pairs, hp, opts)
	if err != nil {
		return Result{}, err
	}
	if l.r, err = newRun(ctx, m, l.pairs, hp); err != nil {
		return Result{}, err
	}
	defer l.r.close()
	if err := l.prepare(ctx); err != nil {
		return Result{}, err
	}
	if err := l.resume(ctx); err != nil {
		return Result{}, err
	}
	if err := l.plan(ctx); err != nil {
		return Result{}, err
	}
	if err := l.trainEpochs(ctx); err != nil {
		return Result{}, err
	}
	return l.finish(ctx)
}

// setUp checks the inputs, splits off the validation pairs, takes this
// rank's role in a group and mines hard negatives.
func setUp(ctx context.Context, m *minilm.Model, pairs []dataset.Pair, hp HyperParameters, opts Options) (*loop, error) {
	if err := checkInputs(m, pairs, hp); err != nil {
		return nil, err
	}
	l := &loop{m: m, hp: hp, opts: opts, pool: pairs}
	var err error
	if l.pairs, l.valPairs, err = SplitValidation(pairs, hp); err != nil {
		return nil, err
	}
	if g := l.opts.Group; g != nil && g.Size() > 1 {
		if hp.BatchSize%g.Size() != 0 {
			return nil, fmt.Errorf("batch size %d does not divide by the world size %d: --batch-size is the global batch, split evenly across ranks", hp.BatchSize, g.Size())
		}
		l.pg = g.ProcessGroup()
		if g.Rank() != 0 {
			l.opts.Logger, l.opts.Progress, l.opts.CheckpointEvery = nil, nil, 0
		}
	}
	if l.opts.LogEvery <= 0 {
		l.opts.LogEvery = 10
	}
	if l.opts.KeepCheckpoints <= 0 {
		l.opts.KeepCheckpoints = 2
	}
	l.log = l.opts.Logger
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if ml, ok := hp.Matryoshka(); ok && !slices.Contains(ml.Dims, m.Dim()) {
		// MatryoshkaLoss's own warning.
		l.log.Warn("the model's embedding dimension is not in matryoshka dims: the full vector is not trained directly", "dim", m.Dim(), "matryoshka_dims", hp.MatryoshkaDims)
	}
	if hp.HardNegatives > 0 {
		if l.pairs, err = l.mineHardNegatives(ctx); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// checkInputs rejects settings and data that cannot train.
func checkInputs(m *minilm.Model, pairs []dataset.Pair, hp HyperParameters) error {
	if err := hp.Validate(); err != nil {
		return err
	}
	if ml, ok := hp.Matryoshka(); ok {
		if err := ml.Validate(m.Dim()); err != nil {
			return err
		}
	}
	if len(pairs) < 2 {
		return fmt.Errorf("training needs at least 2 pairs, got %d", len(pairs))
	}
	return checkRectangular(pairs)
}

// mineHardNegatives mines with the weights Train starts from; a resumed run
// is handed the same starting model, so it mines the same negatives.
func (l *loop) mineHardNegatives(ctx context.Context) ([]dataset.Pair, error) {
	mined, dropped, err := MineHardNegatives(ctx, l.m, l.pairs, l.hp.HardNegatives, l.hp.HardNegativeMargin)
	if err != nil {
		return nil, err
	}
	if len(mined) < 2 {
		return nil, fmt.Errorf("hard negatives: only %d of %d pairs kept enough candidates (lower --hard-negative-margin)", len(mined), len(l.pairs))
	}
	l.log.Info("mined hard negatives", "per_pair", l.hp.HardNegatives, "margin", l.hp.HardNegativeMargin,
		"pairs", len(mined), "dropped", dropped)
	return mined, nil
}

// prepare keeps the base weights a fixed WiSE-FT α needs, builds the
// validator, the checkpoint state and the step, and has every rank of a
// group agree on the settings.
func (l *loop) prepare(ctx context.Context) error {
	hp, m := l.hp, l.m
	var err error
	if alpha, auto, _ := ParseWiseFT(hp.WiseFT); !hp.validating() && !auto && alpha < 1 {
		if l.base, err = m.Weights(ctx); err != nil {
			return err
		}
	}
	if hp.validating() {
		// The weights Train is handed are the base model: a resumed run is
		// handed them again, so they are not checkpointed.
		if l.r.val, err = newValidator(ctx, m, l.pool, l.pairs, l.valPairs, hp); err != nil {
			return err
		}
		l.log.Info("validation split", "validation_pairs", len(l.valPairs), "training_pairs", len(l.pairs),
			"corpus", len(l.r.val.task.Corpus), "metric", l.r.val.metric, "eval_strategy", hp.evalStrategy(),
			"load_best_model_at_end", hp.LoadBestModelAtEnd, "wise_ft", hp.WiseFT)
	}
	l.st = checkpointState{Hyper: hp, DataHash: hashPairs(l.pairs)}
	pg := l.pg
	if pg == nil {
		l.step = l.r.step
		return nil
	}
	l.st.WorldSize = pg.Size
	l.comm = &CommStats{WorldSize: pg.Size}
	l.step = func(batch []int, lr float64) (float64, float64, error) {
		loss, norm, err := l.r.stepShard(batch, lr, pg, l.opts.GatherAcrossDevices, l.comm)
		if err != nil {
			err = l.opts.Group.Explain(err)
		}
		return loss, norm, err
	}
	settings, err := agreeSettings(hp, l.st.DataHash, len(l.pairs), l.opts.GatherAcrossDevices, pg.Size)
	if err != nil {
		return err
	}
	if err := l.opts.Group.Agree(ctx, "training", settings); err != nil {
		return err
	}
	if hp.Seed != 0 {
		return m.Worker().Do(ctx, func() error { return torch.ManualSeed(shardSeed(hp.Seed, pg.Rank)) })
	}
	return nil
}

// resume continues from the newest checkpoint when asked to: the weights,
// optimizer, generators, position and validation history.
func (l *loop) resume(ctx context.Context) error {
	if !l.opts.Resume || l.opts.CheckpointDir == "" {
		return nil
	}
	var err error
	if l.st, l.resumedFrom, err = l.r.resume(ctx, l.opts.CheckpointDir, l.st, l.log); err != nil {
		return err
	}
	pg := l.pg
	if pg != nil {
		// Every rank must resume from the same checkpoint (a shared
		// folder, or SageMaker's /opt/ml/checkpoints synced on every host).
		if err := l.opts.Group.Agree(ctx, "resume", map[string]string{"checkpoint": filepath.Base(l.resumedFrom)}); err != nil {
			return err
		}
	}
	if l.resumedFrom != "" && l.r.val != nil {
		if err := l.r.val.restore(ctx, l.resumedFrom, l.st); err != nil {
			return err
		}
	}
	if l.resumedFrom != "" && pg != nil && pg.Rank != 0 && l.hp.Seed != 0 {
		// rng.bin is rank 0's generator; the others draw a fresh
		// stream derived from the seed, the rank and the step.
		seed := shardSeed(l.hp.Seed+uint64(l.st.Step), pg.Rank)
		return l.m.Worker().Do(ctx, func() error { return torch.ManualSeed(seed) })
	}
	return nil
}

// plan builds every epoch's batches and the learning-rate schedule, and
// scores the base model as the first candidate.
//
// Every epoch has the same number of batches only without the
// no-duplicates sampler; count them all up front for the schedule.
// sentence-transformers' Trainer instead plans ceil(pairs/batch) steps an
// epoch (the sampler's advertised length) and takes only that many
// batches. That is the same without clashes, but with hard-negative
// columns, which clash often, it leaves pairs out: 30 of 51 batches on a
// Debian FAQ fold with one mined negative. embtune trains every batch.
func (l *loop) plan(ctx context.Context) error {
	hp := l.hp
	l.epochs = make([][][]int, hp.Epochs)
	total := 0
	for e := range l.epochs {
		l.epochs[e] = Batches(l.pairs, epochOrder(len(l.pairs), hp.Seed, e), hp.BatchSize, hp.NoDuplicates)
		total += len(l.epochs[e])
	}
	if total == 0 {
		return errors.New("no batch has two pairs: every pair shares a text with another")
	}
	l.sched = LinearSchedule{Base: hp.LR, Warmup: hp.warmup(total), Total: total}
	attrs := []any{"pairs", len(l.pairs), "epochs", hp.Epochs, "batch_size", hp.BatchSize,
		"steps", total, "warmup_steps", l.sched.Warmup, "lr", hp.LR, "max_seq_length", l.m.MaxSeqLength,
		"device", l.m.Device().String(), "bf16", hp.BF16, "no_duplicates", hp.NoDuplicates}
	if hp.MiniBatchSize > 0 {
		attrs = append(attrs, "mini_batch_size", hp.MiniBatchSize)
	}
	if hp.GradientCheckpointing {
		attrs = append(attrs, "gradient_checkpointing", true)
	}
	l.log.Info("training", attrs...)
	if l.opts.MinCheckpointInterval == 0 {
		l.opts.MinCheckpointInterval = time.Minute
	}
	if l.r.val != nil && len(l.st.Evaluations) == 0 {
		// The base model is the first candidate (step 0).
		if err := l.r.val.record(ctx, &l.st, 0, true, l.log); err != nil {
			return err
		}
	}
	l.bar = newProgressBar(l.opts.Progress, total)
	return nil
}

// trainEpochs runs the batches from the resumed position to the last epoch.
func (l *loop) trainEpochs(ctx context.Context) error {
	l.start = time.Now()
	lastEpoch := l.hp.Epochs
	if l.opts.stopAfterEpoch > 0 {
		lastEpoch = min(lastEpoch, l.opts.stopAfterEpoch)
	}
	for l.st.Epoch < lastEpoch {
		batches := l.epochs[l.st.Epoch]
		for l.st.Batch < len(batches) {
			var err error
			if ctx, err = l.stopIfAsked(ctx); err != nil {
				return err
			}
			if err := l.trainBatch(ctx, batches); err != nil {
				return err
			}
		}
		if err := l.endEpoch(ctx); err != nil {
			return err
		}
	}
	l.bar.finish()
	return nil
}

// stopIfAsked saves a checkpoint and returns an error wrapping
// ErrInterrupted when ctx has ended, on this rank or (agreed over the
// group, so that every rank stops after the same step) on any other. The
// context it returns is cancelled when another rank stopped.
func (l *loop) stopIfAsked(ctx context.Context) (context.Context, error) {
	stop := ctx.Err() != nil
	if l.pg != nil {
		agreed, err := l.r.stopAgreed(l.pg, stop)
		if err != nil {
			l.bar.finish()
			return ctx, l.opts.Group.Explain(fmt.Errorf("step %d: %w", l.st.Step, err))
		}
		if agreed && !stop {
			ctx = stoppedContext(ctx)
		}
		stop = agreed
	}
	if !stop {
		return ctx, nil
	}
	l.bar.finish()
	if err := l.save(ctx, "interrupted"); err != nil {
		return ctx, errors.Join(fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err()), err)
	}
	return ctx, fmt.Errorf("%w at step %d: %w", ErrInterrupted, l.st.Step, ctx.Err())
}

// trainBatch takes one optimizer step on the next batch, logs it, and
// evaluates and checkpoints when they fall due.
func (l *loop) trainBatch(ctx context.Context, batches [][]int) error {
	batch := batches[l.st.Batch]
	lr := l.sched.LR(l.st.Step)
	loss, norm, err := l.step(batch, lr)
	if err != nil {
		l.bar.finish()
		return fmt.Errorf("step %d: %w", l.st.Step, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		l.bar.finish()
		return fmt.Errorf("step %d: loss is %v (lower --lr, or check the data)", l.st.Step, loss)
	}
	rec := l.record(len(batch), len(batches), loss, lr, norm)
	if l.r.val != nil && l.hp.evalStrategy() == EvalSteps && l.st.Step%l.hp.EvalSteps == 0 {
		if err := l.r.val.record(ctx, &l.st, rec.Epoch, true, l.log); err != nil {
			l.bar.finish()
			return fmt.Errorf("step %d: %w", l.st.Step, err)
		}
	}
	if l.opts.CheckpointEvery > 0 && l.st.Step%l.opts.CheckpointEvery == 0 && l.st.Batch < len(batches) {
		return l.save(ctx, "every")
	}
	return nil
}

// record advances the position past a step of pairs pairs and logs it.
func (l *loop) record(pairs, batches int, loss, lr, norm float64) StepLog {
	st := &l.st
	st.Step++
	st.Batch++
	l.pairsDone += pairs
	rec := StepLog{Step: st.Step, Epoch: float64(st.Epoch) + float64(st.Batch)/float64(batches),
		Loss: loss, LR: lr, GradNorm: norm}
	st.History = append(st.History, rec)
	rate := float64(l.pairsDone) / time.Since(l.start).Seconds()
	l.bar.update(st.Step, loss, lr, rate)
	if st.Step%l.opts.LogEvery == 0 || st.Batch == batches {
		l.log.Info("step", "step", st.Step, "epoch", fmt.Sprintf("%.2f", rec.Epoch),
			"loss", fmt.Sprintf("%.6f", loss), "lr", fmt.Sprintf("%.4g", lr),
			"grad_norm", fmt.Sprintf("%.4f", norm), "pairs_per_sec", fmt.Sprintf("%.2f", rate))
	}
	if l.opts.OnStep != nil {
		l.opts.OnStep(rec)
	}
	return rec
}

// endEpoch moves to the next epoch, evaluates when the strategy says so
// and checkpoints.
func (l *loop) endEpoch(ctx context.Context) error {
	l.st.Epoch++
	l.st.Batch = 0
	if l.r.val != nil && l.hp.evalStrategy() == EvalEpoch {
		if err := l.r.val.record(ctx, &l.st, float64(l.st.Epoch), true, l.log); err != nil {
			l.bar.finish()
			return fmt.Errorf("epoch %d: %w", l.st.Epoch, err)
		}
	}
	return l.save(ctx, "epoch")
}

// save writes a checkpoint (rank 0 only) unless checkpoints are off, or
// an epoch-end one would come sooner than MinCheckpointInterval after the
// last.
func (l *loop) save(ctx context.Context, reason string) error {
	if l.opts.CheckpointDir == "" || (l.pg != nil && l.pg.Rank != 0) {
		return nil
	}
	if reason == "epoch" && l.st.Epoch < l.hp.Epochs && time.Since(l.lastSave) < l.opts.MinCheckpointInterval {
		return nil
	}
	l.lastSave = time.Now()
	// An interrupted run still saves: the checkpoint must not see the cancellation.
	path, err := l.r.checkpoint(context.WithoutCancel(ctx), l.opts.CheckpointDir, l.st, l.opts.KeepCheckpoints)
	if err != nil {
		return err
	}
	l.log.Info("checkpoint", "path", path, "step", l.st.Step, "reason", reason)
	return nil
}

// finish puts the model in evaluation mode, applies a fixed WiSE-FT α,
// lets the validation split choose the weights, and refits when asked to.
func (l *loop) finish(ctx context.Context) (Result, error) {
	if err := l.r.finish(ctx); err != nil {
		return Result{}, err
	}
	secs := time.Since(l.start).Seconds()
	if err := l.applyFixedWiseFT(ctx); err != nil {
		return Result{}, err
	}
	valRep, err := l.selectBest(ctx)
	if err != nil {
		return Result{}, err
	}
	l.logComm()
	res := Result{Steps: l.st.Step, Pairs: l.pairsDone, Seconds: secs, PairsPerSec: float64(l.pairsDone) / secs,
		History: l.st.History, ResumedFrom: l.resumedFrom, Comm: l.comm, Validation: valRep}
	switch {
	case !l.hp.Refit || valRep == nil:
	case l.hp.RefitMaxPairs > 0 && len(l.pool) > l.hp.RefitMaxPairs:
		l.log.Info("refit skipped", "pairs", len(l.pool), "refit_max_pairs", l.hp.RefitMaxPairs)
	default:
		if err := refit(ctx, l.m, l.pool, l.hp, l.opts, l.r.val.base, &res, l.log); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// applyFixedWiseFT interpolates with the base weights at a fixed α when
// there is no validation split to choose one.
func (l *loop) applyFixedWiseFT(ctx context.Context) error {
	if l.base == nil {
		return nil
	}
	alpha, _, _ := ParseWiseFT(l.hp.WiseFT)
	tuned, err := l.m.Weights(ctx)
	if err != nil {
		return err
	}
	w, err := interpolate(l.base, tuned, alpha)
	if err != nil {
		return err
	}
	if err := l.m.SetWeights(ctx, w); err != nil {
		return fmt.Errorf("wise-ft: %w", err)
	}
	l.log.Info("WiSE-FT", "alpha", alpha)
	return nil
}

// selectBest lets the validation split choose the step and α (nil
// without a split).
func (l *loop) selectBest(ctx context.Context) (*ValidationReport, error) {
	if l.r.val == nil {
		return nil, nil
	}
	valRep, err := l.r.val.finish(ctx, &l.st, l.log)
	if err != nil {
		return nil, err
	}
	if l.pg != nil {
		// Every rank scored the same weights on the same split; a
		// disagreement would leave the ranks with different models.
		if err := l.opts.Group.Agree(ctx, "validation", map[string]string{"best_step": fmt.Sprint(valRep.BestStep),
			"alpha": formatAlpha(valRep.Alpha)}); err != nil {
			return nil, err
		}
	}
	if valRep.BaseWon {
		l.log.Info(BaseWonMessage, "base", fmt.Sprintf("%.4f", valRep.BaseScore), "best_tuned", fmt.Sprintf("%.4f", bestTuned(valRep)))
	} else {
		l.log.Info("validation decided", "best_step", valRep.BestStep, "loaded_best", valRep.LoadedBest, "alpha", valRep.Alpha,
			valRep.Metric, fmt.Sprintf("%.4f", valRep.Score), "base", fmt.Sprintf("%.4f", valRep.BaseScore))
	}
	return valRep, nil
}

// logComm logs a distributed run's per-step communication.
func (l *loop) logComm() {
	comm := l.comm
	if comm == nil {
		return
	}
	comm.finish()
	l.log.Info("communication (per-step medians)", "world_size", comm.WorldSize, "steps", comm.Steps,
		"step_ms", fmt.Sprintf("%.1f", 1000*comm.StepSeconds),
		"all_gather_ms", fmt.Sprintf("%.2f", 1000*comm.GatherSeconds),
		"all_reduce_ms", fmt.Sprintf("%.1f", 1000*comm.ReduceSeconds),
		"all_gather_bytes_per_step", comm.GatherBytes,
		"all_reduce_bytes_per_step", comm.ReduceBytes, "buckets", comm.BucketsPerStep)
}
