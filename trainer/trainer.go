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
	m    *minilm.Model
	hp   HyperParameters
	loss *CompiledLoss
	// surrogate backpropagates GradCache's cached gradients (nil without
	// a mini-batch size).
	surrogate *CompiledLoss
	params    []*torch.Tensor
	// padRows are the rows of params that transformers' nn.Embedding
	// padding_idx holds fixed (minilm.Model.PaddingRows), with a zero row
	// to copy into their gradients.
	padRows []padRow
	opt     *torch.AdamW
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
		if hp.MiniBatchSize > 0 {
			if r.surrogate, err = compileSource("GradCache", gradCacheSource); err != nil {
				return err
			}
		}
		if err := m.SetGradientCheckpointing(hp.GradientCheckpointing); err != nil {
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
		padding := m.PaddingRows()
		for _, p := range named {
			r.params = append(r.params, p.Tensor)
			name := strings.ReplaceAll(p.Name, "__", ".")
			if row, ok := padding[name]; ok {
				pr, err := newPadRow(p.Tensor, row)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				r.padRows = append(r.padRows, pr)
			}
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
		r.surrogate.Close()
		for _, p := range r.params {
			p.Close()
		}
		for _, p := range r.padRows {
			p.zero.Close()
		}
		r.m.Module().Train(false)           //nolint:errcheck
		r.m.SetGradientCheckpointing(false) //nolint:errcheck // the module over the same weights
		return r.m.Module().SetRequiresGrad(false)
	})
}

func (r *run) finish(ctx context.Context) error {
	return r.m.Worker().Do(ctx, func() error { return r.m.Module().Train(false) })
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

// padRow is one embedding row whose gradient training keeps at zero.
type padRow struct {
	param *torch.Tensor
	row   int64
	zero  *torch.Tensor // [1, dim], the parameter's dtype and device
}

func newPadRow(p *torch.Tensor, row int64) (padRow, error) {
	shape, err := p.Shape()
	if err != nil {
		return padRow{}, err
	}
	if len(shape) != 2 || row < 0 || row >= shape[0] {
		return padRow{}, fmt.Errorf("padding row %d is outside the embedding table %v", row, shape)
	}
	dt, err := p.DType()
	if err != nil {
		return padRow{}, err
	}
	dev, err := p.Device()
	if err != nil {
		return padRow{}, err
	}
	zero, err := torch.Zeros(dt, dev, 1, shape[1])
	if err != nil {
		return padRow{}, err
	}
	return padRow{param: p, row: row, zero: zero}, nil
}

// clear zeroes the row of the parameter's gradient, as nn.Embedding's
// backward does for its padding_idx (after the all-reduce in distributed
// training, where every rank zeroes the same row).
func (p padRow) clear() error {
	g, err := p.param.Grad()
	if err != nil || g == nil {
		return err
	}
	defer g.Close()
	v, err := g.Narrow(0, p.row, 1)
	if err != nil {
		return err
	}
	defer v.Close()
	return v.CopyFrom(p.zero)
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
	for _, p := range r.padRows {
		if err := p.clear(); err != nil {
			return 0, err
		}
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
