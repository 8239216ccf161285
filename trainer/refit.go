package trainer

import (
	"context"
	"fmt"
	"log/slog"
	"math"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/minilm"
)

// refit retrains from the base weights on every pair of the pool (the
// validation pairs too) with the validation split's choices: the best
// epoch, kept by stopping there with the full run's learning-rate schedule,
// and the WiSE-FT α. When the base model won there is nothing to refit.
// The refit writes no checkpoints: a resumed run refits again from its
// last checkpoint.
func refit(ctx context.Context, m *minilm.Model, pool []dataset.Pair, hp HyperParameters, opts Options,
	base map[string]hf.RawTensor, res *Result, log *slog.Logger) error {
	v := res.Validation
	if v.BaseWon {
		log.Info("refit skipped: " + BaseWonMessage)
		return nil
	}
	epochs := hp.Epochs
	if v.LoadedBest {
		epochs = max(1, int(math.Ceil(v.BestEpoch-1e-9)))
	}
	if err := m.SetWeights(ctx, base); err != nil {
		return fmt.Errorf("refit: %w", err)
	}
	again := hp
	again.ValidationSplit, again.Refit, again.LoadBestModelAtEnd = 0, false, false
	again.WiseFT = formatAlpha(v.Alpha)
	if v.Alpha == 1 {
		again.WiseFT = "off"
	}
	o := opts
	o.CheckpointDir, o.Resume, o.stopAfterEpoch = "", false, epochs
	log.Info("refit on all training pairs", "pairs", len(pool), "epochs", epochs, "of", hp.Epochs, "alpha", v.Alpha)
	r, err := Train(ctx, m, pool, again, o)
	if err != nil {
		return fmt.Errorf("refit: %w", err)
	}
	v.RefitPairs, v.RefitEpochs = len(pool), epochs
	res.Steps += r.Steps
	res.Pairs += r.Pairs
	res.Seconds += r.Seconds
	res.PairsPerSec = float64(res.Pairs) / res.Seconds
	return nil
}
