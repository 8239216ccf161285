package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/distributed"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// Options control a run apart from its hyperparameters.
type Options struct {
	// CheckpointDir receives checkpoints; empty disables them.
	CheckpointDir string
	// CheckpointEvery saves every N optimizer steps (0: only at epoch ends).
	CheckpointEvery int
	// KeepCheckpoints is how many checkpoints to keep (default 2).
	KeepCheckpoints int
	// MinCheckpointInterval skips an epoch-end checkpoint when the last one
	// is more recent (default 1 minute; negative: never skip). A checkpoint
	// holds about three copies of the weights, so short epochs would
	// otherwise spend their time writing them. Interruptions always save.
	MinCheckpointInterval time.Duration
	// Resume continues from the newest checkpoint in CheckpointDir, if any.
	Resume bool
	// LogEvery writes a step line every N steps (default 10); the last step
	// of each epoch is always logged.
	LogEvery int
	Logger   *slog.Logger
	// Progress receives a progress bar (nil: none).
	Progress io.Writer
	// OnStep, if set, is called after every optimizer step.
	OnStep func(StepLog)
	// Group, when it has more than one rank, trains data-parallel: this
	// process takes its shard of every global batch (see distributed.go).
	// Only rank 0 logs, shows progress and writes checkpoints.
	Group *distributed.Group
	// GatherAcrossDevices runs the loss over the global batch (in-batch
	// negatives from every rank) rather than each rank's shard.
	GatherAcrossDevices bool
	// stopAfterEpoch > 0 ends the run after that many epochs, with the
	// learning-rate schedule of all hp.Epochs (the refit, refit.go).
	stopAfterEpoch int
}

// StepLog is one optimizer step, as logged.
type StepLog struct {
	Step     int     `json:"step"`
	Epoch    float64 `json:"epoch"`
	Loss     float64 `json:"loss"`
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"`
}

// Result summarises a finished run.
type Result struct {
	Steps       int
	Pairs       int
	Seconds     float64
	PairsPerSec float64
	History     []StepLog
	ResumedFrom string
	// Comm is the communication of a distributed run (nil otherwise).
	Comm *CommStats
	// Validation is what the validation split decided (nil without one).
	Validation *ValidationReport
}

// ErrInterrupted wraps the context error when a run stops early after
// saving a checkpoint.
var ErrInterrupted = errors.New("training interrupted")

// Train fine-tunes m in place on pairs. The model's MaxSeqLength truncates
// every text. When ctx ends, Train saves a checkpoint (if CheckpointDir is
// set) and returns an error wrapping ErrInterrupted.
func Train(ctx context.Context, m *minilm.Model, pairs []dataset.Pair, hp HyperParameters, opts Options) (Result, error) {
	if err := hp.Validate(); err != nil {
		return Result{}, err
	}
	if ml, ok := hp.Matryoshka(); ok {
		if err := ml.Validate(m.Dim()); err != nil {
			return Result{}, err
		}
	}
	if len(pairs) < 2 {
		return Result{}, fmt.Errorf("training needs at least 2 pairs, got %d", len(pairs))
	}
	if err := checkRectangular(pairs); err != nil {
		return Result{}, err
	}
	pool := pairs
	pairs, valPairs, err := SplitValidation(pool, hp)
	if err != nil {
		return Result{}, err
	}
	var pg *torch.ProcessGroup
	if g := opts.Group; g != nil && g.Size() > 1 {
		if hp.BatchSize%g.Size() != 0 {
			return Result{}, fmt.Errorf("batch size %d does not divide by the world size %d: --batch-size is the global batch, split evenly across ranks", hp.BatchSize, g.Size())
		}
		pg = g.ProcessGroup()
		if g.Rank() != 0 {
			opts.Logger, opts.Progress, opts.CheckpointEvery = nil, nil, 0
		}
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = 10
	}
	if opts.KeepCheckpoints <= 0 {
		opts.KeepCheckpoints = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if ml, ok := hp.Matryoshka(); ok && !slices.Contains(ml.Dims, m.Dim()) {
		// MatryoshkaLoss's own warning.
		log.Warn("the model's embedding dimension is not in matryoshka dims: the full vector is not trained directly", "dim", m.Dim(), "matryoshka_dims", hp.MatryoshkaDims)
	}
	if hp.HardNegatives > 0 {
		// Mined with the weights Train starts from; a resumed run is handed
		// the same starting model, so it mines the same negatives.
		mined, dropped, err := MineHardNegatives(ctx, m, pairs, hp.HardNegatives, hp.HardNegativeMargin)
		if err != nil {
			return Result{}, err
		}
		if len(mined) < 2 {
			return Result{}, fmt.Errorf("hard negatives: only %d of %d pairs kept enough candidates (lower --hard-negative-margin)", len(mined), len(pairs))
		}
		log.Info("mined hard negatives", "per_pair", hp.HardNegatives, "margin", hp.HardNegativeMargin,
			"pairs", len(mined), "dropped", dropped)
		pairs = mined
	}
	r, err := newRun(ctx, m, pairs, hp)
	if err != nil {
		return Result{}, err
	}
	defer r.close()
	var base map[string]hf.RawTensor // for a fixed WiSE-FT α without validation
	if alpha, auto, _ := ParseWiseFT(hp.WiseFT); !hp.validating() && !auto && alpha < 1 {
		if base, err = m.Weights(ctx); err != nil {
			return Result{}, err
		}
	}
	if hp.validating() {
		// The weights Train is handed are the base model: a resumed run is
		// handed them again, so they are not checkpointed.
		if r.val, err = newValidator(ctx, m, pool, pairs, valPairs, hp); err != nil {
			return Result{}, err
		}
		log.Info("validation split", "validation_pairs", len(valPairs), "training_pairs", len(pairs),
			"corpus", len(r.val.task.Corpus), "metric", r.val.metric, "eval_strategy", hp.evalStrategy(),
			"load_best_model_at_end", hp.LoadBestModelAtEnd, "wise_ft", hp.WiseFT)
	}

	st := checkpointState{Hyper: hp, DataHash: hashPairs(pairs)}
	var comm *CommStats
	if pg != nil {
		st.WorldSize = pg.Size
		comm = &CommStats{WorldSize: pg.Size}
		settings, err := agreeSettings(hp, st.DataHash, len(pairs), opts.GatherAcrossDevices, pg.Size)
		if err != nil {
			return Result{}, err
		}
		if err := opts.Group.Agree(ctx, "training", settings); err != nil {
			return Result{}, err
		}
		if hp.Seed != 0 {
			if err := m.Worker().Do(ctx, func() error { return torch.ManualSeed(shardSeed(hp.Seed, pg.Rank)) }); err != nil {
				return Result{}, err
			}
		}
	}
	resumedFrom := ""
	if opts.Resume && opts.CheckpointDir != "" {
		if st, resumedFrom, err = r.resume(ctx, opts.CheckpointDir, st, log); err != nil {
			return Result{}, err
		}
		if pg != nil {
			// Every rank must resume from the same checkpoint (a shared
			// folder, or SageMaker's /opt/ml/checkpoints synced on every host).
			if err := opts.Group.Agree(ctx, "resume", map[string]string{"checkpoint": filepath.Base(resumedFrom)}); err != nil {
				return Result{}, err
			}
		}
		if resumedFrom != "" && r.val != nil {
			if err := r.val.restore(ctx, resumedFrom, st); err != nil {
				return Result{}, err
			}
		}
		if resumedFrom != "" && pg != nil && pg.Rank != 0 && hp.Seed != 0 {
			// rng.bin is rank 0's generator; the others draw a fresh
			// stream derived from the seed, the rank and the step.
			if err := m.Worker().Do(ctx, func() error { return torch.ManualSeed(shardSeed(hp.Seed+uint64(st.Step), pg.Rank)) }); err != nil {
				return Result{}, err
			}
		}
	}

	// Every epoch has the same number of batches only without the
	// no-duplicates sampler; count them all up front for the schedule.
	// sentence-transformers' Trainer instead plans ceil(pairs/batch) steps an
	// epoch (the sampler's advertised length) and takes only that many
	// batches. That is the same without clashes, but with hard-negative
	// columns, which clash often, it leaves pairs out: 30 of 51 batches on a
	// Debian FAQ fold with one mined negative. embtune trains every batch.
	epochs := make([][][]int, hp.Epochs)
	total := 0
	for e := range epochs {
		epochs[e] = Batches(pairs, epochOrder(len(pairs), hp.Seed, e), hp.BatchSize, hp.NoDuplicates)
		total += len(epochs[e])
	}
	if total == 0 {
		return Result{}, errors.New("no batch has two pairs: every pair shares a text with another")
	}
	sched := LinearSchedule{Base: hp.LR, Warmup: hp.warmup(total), Total: total}
	log.Info("training", "pairs", len(pairs), "epochs", hp.Epochs, "batch_size", hp.BatchSize,
		"steps", total, "warmup_steps", sched.Warmup, "lr", hp.LR, "max_seq_length", m.MaxSeqLength,
		"device", m.Device().String(), "bf16", hp.BF16, "no_duplicates", hp.NoDuplicates)

	if opts.MinCheckpointInterval == 0 {
		opts.MinCheckpointInterval = time.Minute
	}
	if r.val != nil && len(st.Evaluations) == 0 {
		// The base model is the first candidate (step 0).
		if err := r.val.record(ctx, &st, 0, true, log); err != nil {
			return Result{}, err
		}
	}
	bar := newProgressBar(opts.Progress, total)
	start := time.Now()
	pairsDone := 0
	var lastSave time.Time
	save := func(reason string) error {
		if opts.CheckpointDir == "" || (pg != nil && pg.Rank != 0) {
			return nil
		}
		if reason == "epoch" && st.Epoch < hp.Epochs && time.Since(lastSave) < opts.MinCheckpointInterval {
			return nil
		}
		lastSave = time.Now()
		// An interrupted run still saves: the checkpoint must not see the cancellation.
		path, err := r.checkpoint(context.WithoutCancel(ctx), opts.CheckpointDir, st, opts.KeepCheckpoints)
		if err != nil {
			return err
		}
		log.Info("checkpoint", "path", path, "step", st.Step, "reason", reason)
		return nil
	}
	lastEpoch := hp.Epochs
	if opts.stopAfterEpoch > 0 {
		lastEpoch = min(lastEpoch, opts.stopAfterEpoch)
	}
	for st.Epoch < lastEpoch {
		batches := epochs[st.Epoch]
		for st.Batch < len(batches) {
			stop := ctx.Err() != nil
			if pg != nil {
				// Every rank stops after the same step, whichever was told to.
				agreed, err := r.stopAgreed(pg, stop)
				if err != nil {
					bar.finish()
					return Result{}, opts.Group.Explain(fmt.Errorf("step %d: %w", st.Step, err))
				}
				if agreed && !stop {
					ctx = stoppedContext(ctx)
				}
				stop = agreed
			}
			if stop {
				bar.finish()
				if err := save("interrupted"); err != nil {
					return Result{}, errors.Join(fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err()), err)
				}
				return Result{}, fmt.Errorf("%w at step %d: %w", ErrInterrupted, st.Step, ctx.Err())
			}
			batch := batches[st.Batch]
			lr := sched.LR(st.Step)
			var loss, norm float64
			if pg != nil {
				loss, norm, err = r.stepShard(batch, lr, pg, opts.GatherAcrossDevices, comm)
				if err != nil {
					err = opts.Group.Explain(err)
				}
			} else {
				loss, norm, err = r.step(batch, lr)
			}
			if err != nil {
				bar.finish()
				return Result{}, fmt.Errorf("step %d: %w", st.Step, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				bar.finish()
				return Result{}, fmt.Errorf("step %d: loss is %v (lower --lr, or check the data)", st.Step, loss)
			}
			st.Step++
			st.Batch++
			pairsDone += len(batch)
			rec := StepLog{Step: st.Step, Epoch: float64(st.Epoch) + float64(st.Batch)/float64(len(batches)),
				Loss: loss, LR: lr, GradNorm: norm}
			st.History = append(st.History, rec)
			rate := float64(pairsDone) / time.Since(start).Seconds()
			bar.update(st.Step, loss, lr, rate)
			if st.Step%opts.LogEvery == 0 || st.Batch == len(batches) {
				log.Info("step", "step", st.Step, "epoch", fmt.Sprintf("%.2f", rec.Epoch),
					"loss", fmt.Sprintf("%.6f", loss), "lr", fmt.Sprintf("%.4g", lr),
					"grad_norm", fmt.Sprintf("%.4f", norm), "pairs_per_sec", fmt.Sprintf("%.2f", rate))
			}
			if opts.OnStep != nil {
				opts.OnStep(rec)
			}
			if r.val != nil && hp.evalStrategy() == EvalSteps && st.Step%hp.EvalSteps == 0 {
				if err := r.val.record(ctx, &st, rec.Epoch, true, log); err != nil {
					bar.finish()
					return Result{}, fmt.Errorf("step %d: %w", st.Step, err)
				}
			}
			if opts.CheckpointEvery > 0 && st.Step%opts.CheckpointEvery == 0 && st.Batch < len(batches) {
				if err := save("every"); err != nil {
					return Result{}, err
				}
			}
		}
		st.Epoch++
		st.Batch = 0
		if r.val != nil && hp.evalStrategy() == EvalEpoch {
			if err := r.val.record(ctx, &st, float64(st.Epoch), true, log); err != nil {
				bar.finish()
				return Result{}, fmt.Errorf("epoch %d: %w", st.Epoch, err)
			}
		}
		if err := save("epoch"); err != nil {
			return Result{}, err
		}
	}
	bar.finish()
	if err := r.finish(ctx); err != nil {
		return Result{}, err
	}
	secs := time.Since(start).Seconds()
	var valRep *ValidationReport
	if base != nil {
		alpha, _, _ := ParseWiseFT(hp.WiseFT)
		tuned, err := m.Weights(ctx)
		if err != nil {
			return Result{}, err
		}
		w, err := interpolate(base, tuned, alpha)
		if err != nil {
			return Result{}, err
		}
		if err := m.SetWeights(ctx, w); err != nil {
			return Result{}, fmt.Errorf("wise-ft: %w", err)
		}
		log.Info("WiSE-FT", "alpha", alpha)
	}
	if r.val != nil {
		if valRep, err = r.val.finish(ctx, &st, log); err != nil {
			return Result{}, err
		}
		if pg != nil {
			// Every rank scored the same weights on the same split; a
			// disagreement would leave the ranks with different models.
			if err := opts.Group.Agree(ctx, "validation", map[string]string{"best_step": fmt.Sprint(valRep.BestStep),
				"alpha": formatAlpha(valRep.Alpha)}); err != nil {
				return Result{}, err
			}
		}
		if valRep.BaseWon {
			log.Info(BaseWonMessage, "base", fmt.Sprintf("%.4f", valRep.BaseScore), "best_tuned", fmt.Sprintf("%.4f", bestTuned(valRep)))
		} else {
			log.Info("validation decided", "best_step", valRep.BestStep, "loaded_best", valRep.LoadedBest, "alpha", valRep.Alpha,
				valRep.Metric, fmt.Sprintf("%.4f", valRep.Score), "base", fmt.Sprintf("%.4f", valRep.BaseScore))
		}
	}
	if comm != nil {
		comm.finish()
		log.Info("communication (per-step medians)", "world_size", comm.WorldSize, "steps", comm.Steps,
			"step_ms", fmt.Sprintf("%.1f", 1000*comm.StepSeconds),
			"all_gather_ms", fmt.Sprintf("%.2f", 1000*comm.GatherSeconds),
			"all_reduce_ms", fmt.Sprintf("%.1f", 1000*comm.ReduceSeconds),
			"all_gather_bytes_per_step", comm.GatherBytes,
			"all_reduce_bytes_per_step", comm.ReduceBytes, "buckets", comm.BucketsPerStep)
	}
	res := Result{Steps: st.Step, Pairs: pairsDone, Seconds: secs, PairsPerSec: float64(pairsDone) / secs,
		History: st.History, ResumedFrom: resumedFrom, Comm: comm, Validation: valRep}
	switch {
	case !hp.Refit || valRep == nil:
	case hp.RefitMaxPairs > 0 && len(pool) > hp.RefitMaxPairs:
		log.Info("refit skipped", "pairs", len(pool), "refit_max_pairs", hp.RefitMaxPairs)
	default:
		if err := refit(ctx, m, pool, hp, opts, r.val.base, &res, log); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

func checkRectangular(pairs []dataset.Pair) error {
	n := len(pairs[0].Negatives)
	for i, p := range pairs {
		if len(p.Negatives) != n {
			return fmt.Errorf("pair %d has %d hard negatives, pair 0 has %d: every pair needs the same number", i, len(p.Negatives), n)
		}
	}
	return nil
}

func hashPairs(pairs []dataset.Pair) string {
	h := sha256.New()
	for _, p := range pairs {
		for _, t := range texts(p) {
			io.WriteString(h, t)
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// run is the state of one training run that lives on the model's worker.
type run struct {
	m      *minilm.Model
	hp     HyperParameters
	loss   *CompiledLoss
	params []*torch.Tensor
	opt    *torch.AdamW
	// anchorIDs[i], docIDs[c][i]: token ids of pair i's anchor and column c
	// (0 the positive, then each hard negative), tokenized once.
	anchorIDs [][]int64
	docIDs    [][][]int64
	// val scores the validation split (nil without one).
	val *validator
}

func newRun(ctx context.Context, m *minilm.Model, pairs []dataset.Pair, hp HyperParameters) (*run, error) {
	r := &run{m: m, hp: hp}
	// Anchors get the query prompt and positives and negatives the document
	// prompt, as sentence-transformers' training arguments
	// prompts={"anchor": query_prompt, "positive": document_prompt, ...} do;
	// both are empty for folders without prompts.
	queryPrompt, docPrompt := m.Prompt(hf.RoleQuery), m.Prompt(hf.RoleDocument)
	tok := func(s string, what string, i int) ([]int64, error) {
		prompt := docPrompt
		if what == "anchor" {
			prompt = queryPrompt
		}
		// Prepare lower-cases when the folder says do_lower_case, as the
		// encoder does (sentence-transformers lower-cases prompt and text).
		ids, _, err := m.Prepare(prompt + s)
		if err != nil {
			return nil, fmt.Errorf("pair %d %s: %w", i, what, err)
		}
		return ids, nil
	}
	cols := 1 + len(pairs[0].Negatives)
	r.docIDs = make([][][]int64, cols)
	for i, p := range pairs {
		a, err := tok(p.Anchor, "anchor", i)
		if err != nil {
			return nil, err
		}
		r.anchorIDs = append(r.anchorIDs, a)
		for c, t := range append([]string{p.Positive}, p.Negatives...) {
			d, err := tok(t, "document", i)
			if err != nil {
				return nil, err
			}
			r.docIDs[c] = append(r.docIDs[c], d)
		}
	}
	err := m.Worker().Do(ctx, func() error {
		if hp.Seed != 0 {
			if err := torch.ManualSeed(hp.Seed); err != nil {
				return err
			}
		}
		var err error
		if r.loss, err = hp.compileLoss(m.Dim()); err != nil {
			return err
		}
		mod := m.Module()
		if err := mod.SetRequiresGrad(true); err != nil {
			return err
		}
		if err := mod.Train(true); err != nil {
			return err
		}
		named, err := mod.NamedParameters()
		if err != nil {
			return err
		}
		// transformers' Trainer: no weight decay on biases and LayerNorm weights.
		var decay, noDecay []*torch.Tensor
		for _, p := range named {
			r.params = append(r.params, p.Tensor)
			name := strings.ReplaceAll(p.Name, "__", ".")
			if m.NoWeightDecay(name) {
				noDecay = append(noDecay, p.Tensor)
			} else {
				decay = append(decay, p.Tensor)
			}
		}
		o := torch.DefaultAdamWOptions()
		o.LR = hp.LR
		if r.opt, err = torch.NewAdamW(o); err != nil {
			return err
		}
		if _, err := r.opt.AddGroup(decay, hp.LR, hp.WeightDecay); err != nil {
			return err
		}
		_, err = r.opt.AddGroup(noDecay, hp.LR, 0)
		return err
	})
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close frees the optimizer and parameter references and puts the model
// back in evaluation mode.
func (r *run) close() {
	r.m.Worker().Do(context.Background(), func() error { //nolint:errcheck // best-effort cleanup
		r.opt.Close()
		r.loss.Close()
		for _, p := range r.params {
			p.Close()
		}
		r.m.Module().Train(false) //nolint:errcheck
		return r.m.Module().SetRequiresGrad(false)
	})
}

func (r *run) finish(ctx context.Context) error {
	return r.m.Worker().Do(ctx, func() error { return r.m.Module().Train(false) })
}

// embed runs the encoder on sequences with autograd on.
func (r *run) embed(s *torch.Scope, seqs [][]int64) *torch.Tensor {
	b := minilm.PadBatch(seqs, r.m.Tokenizer.PadID())
	ids, mask, err := b.Tensors(r.m.Device())
	if err != nil {
		s.Keep(nil, err)
		return nil
	}
	s.Add(ids, mask)
	return s.Keep(r.m.Module().Forward(ids, mask))
}

// step runs one optimizer update on the batch and returns the loss and the
// gradient norm before clipping.
func (r *run) step(batch []int, lr float64) (loss, norm float64, err error) {
	anchors := make([][]int64, len(batch))
	docs := make([][]int64, 0, len(batch)*len(r.docIDs))
	for i, idx := range batch {
		anchors[i] = r.anchorIDs[idx]
	}
	for _, col := range r.docIDs {
		for _, idx := range batch {
			docs = append(docs, col[idx])
		}
	}
	err = r.m.Worker().Do(context.Background(), func() error {
		s := torch.NewScope()
		defer s.Close()
		if r.hp.BF16 {
			prev, err := torch.SetAutocast(r.m.Device(), true, torch.BFloat16)
			if err != nil {
				return err
			}
			defer torch.SetAutocast(r.m.Device(), prev, torch.BFloat16) //nolint:errcheck
		}
		a := r.embed(s, anchors)
		d := r.embed(s, docs)
		if err := s.Err(); err != nil {
			return err
		}
		l, err := r.loss.Loss(s, a, d)
		if err != nil {
			return err
		}
		if loss, err = l.Item(); err != nil {
			return err
		}
		if err := l.Backward(); err != nil {
			return err
		}
		norm, err = r.clipAndStep(lr)
		return err
	})
	return loss, norm, err
}

// cudaRNGFile holds the CUDA generator's state in checkpoints of CUDA runs.
const cudaRNGFile = "rng-cuda.bin"

// checkpoint saves weights, optimizer, RNG and position.
func (r *run) checkpoint(ctx context.Context, dir string, st checkpointState, keep int) (string, error) {
	weights, err := r.m.Weights(ctx)
	if err != nil {
		return "", err
	}
	best := r.val.checkpointBest(st)
	return writeCheckpoint(dir, st, keep, func(tmp string) error {
		if err := hf.WriteSafetensors(filepath.Join(tmp, "model.safetensors"), weights, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		if best != nil {
			if err := hf.WriteSafetensors(filepath.Join(tmp, bestModelFile), best, map[string]string{"format": "pt"}); err != nil {
				return err
			}
		}
		return r.m.Worker().Do(ctx, func() error {
			if err := r.opt.Save(filepath.Join(tmp, "optimizer.pt")); err != nil {
				return err
			}
			rng, err := torch.RNGState()
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tmp, "rng.bin"), rng, 0o644); err != nil {
				return err
			}
			if dev := r.m.Device(); dev.Type == torch.CUDAType {
				// Dropout on the GPU draws from the device's own generator.
				if rng, err = torch.DeviceRNGState(dev); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(tmp, cudaRNGFile), rng, 0o644)
			}
			return nil
		})
	})
}

// resume restores the newest checkpoint in dir that reads back whole. A
// torn one (a crash can leave a renamed folder whose files never reached
// the disk) is skipped with a warning, and the log says which checkpoint
// the run continues from; a checkpoint of another run is an error.
func (r *run) resume(ctx context.Context, dir string, want checkpointState, log *slog.Logger) (checkpointState, string, error) {
	paths, err := completeCheckpoints(dir)
	if err != nil {
		return want, "", err
	}
	var errs []error
	for _, path := range paths {
		st, err := r.restore(ctx, path, want)
		if err == nil {
			if len(errs) > 0 {
				log.Warn("resumed from an older checkpoint: the newer ones are unreadable", "checkpoint", path, "skipped", len(errs))
			}
			log.Info("resumed", "checkpoint", path, "step", st.Step, "epoch", st.Epoch, "batch", st.Batch)
			return st, path, nil
		}
		if errors.Is(err, errCheckpointMismatch) {
			return want, "", err
		}
		log.Warn("checkpoint is unreadable; trying the one before it", "checkpoint", path, "err", err)
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return want, "", fmt.Errorf("resume: no checkpoint in %s reads back: %w", dir, errors.Join(errs...))
	}
	return want, "", nil
}

// restore loads a checkpoint written by checkpoint for the same data and
// hyperparameters.
func (r *run) restore(ctx context.Context, path string, want checkpointState) (checkpointState, error) {
	st, err := readCheckpointState(path)
	if err != nil {
		return st, err
	}
	if st.DataHash != want.DataHash {
		return st, fmt.Errorf("resume: %w: %s was written for different training data", errCheckpointMismatch, path)
	}
	if max(st.WorldSize, 1) != max(want.WorldSize, 1) {
		// The shards, dropout streams and per-rank RNG states depend on the
		// world size; a different one would silently change the run.
		return st, fmt.Errorf("resume: %w: %s was written by %d training process(es), this run has %d: resume with the same world size (--nproc-per-node, WORLD_SIZE, instance count)",
			errCheckpointMismatch, path, max(st.WorldSize, 1), max(want.WorldSize, 1))
	}
	if st.Hyper != want.Hyper {
		return st, fmt.Errorf("resume: %w: %s was written with other hyperparameters (%+v)", errCheckpointMismatch, path, st.Hyper)
	}
	weights, _, err := hf.ReadSafetensors(filepath.Join(path, "model.safetensors"))
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	if err := r.m.SetWeights(ctx, weights); err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	rng, err := os.ReadFile(filepath.Join(path, "rng.bin"))
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	err = r.m.Worker().Do(ctx, func() error {
		if err := r.opt.Load(filepath.Join(path, "optimizer.pt")); err != nil {
			return err
		}
		if err := torch.SetRNGState(rng); err != nil {
			return err
		}
		if dev := r.m.Device(); dev.Type == torch.CUDAType {
			cuda, err := os.ReadFile(filepath.Join(path, cudaRNGFile))
			if errors.Is(err, fs.ErrNotExist) {
				// Written on the CPU: the GPU's dropout stream starts from the seed.
				slog.Warn("resume: checkpoint has no CUDA generator state; GPU dropout will differ from an uninterrupted run", "checkpoint", path)
				return nil
			}
			if err != nil {
				return err
			}
			return torch.SetDeviceRNGState(dev, cuda)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	return st, nil
}

// stoppedContext is ctx cancelled: another rank was told to stop, so this
// one stops after the same step and reports the interruption too.
func stoppedContext(ctx context.Context) context.Context {
	c, cancel := context.WithCancelCause(ctx)
	cancel(errors.New("another rank stopped"))
	return c
}

// clipAndStep clips the gradients to MaxGradNorm (0: no clipping, the norm
// is still measured), sets the learning rate, steps AdamW and zeroes the
// gradients. It returns the norm before clipping. Runs on the worker.
func (r *run) clipAndStep(lr float64) (float64, error) {
	maxNorm := r.hp.MaxGradNorm
	if maxNorm == 0 {
		maxNorm = math.Inf(1)
	}
	norm, err := torch.ClipGradNorm(r.params, maxNorm)
	if err != nil {
		return 0, err
	}
	if err := r.opt.SetLR(lr); err != nil {
		return norm, err
	}
	if err := r.opt.Step(); err != nil {
		return norm, err
	}
	if err := r.opt.ZeroGrad(); err != nil {
		return norm, err
	}
	if r.hp.BF16 {
		// Cached bf16 weight copies would otherwise go stale after the step.
		return norm, torch.ClearAutocastCache()
	}
	return norm, nil
}
