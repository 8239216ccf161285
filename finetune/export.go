package finetune

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/trainer"
)

// export writes the tuned model as a sentence-transformers folder and a
// TorchScript model.pt at the root of OutputDir, the loss history, and eval.json.
func (j *Job) export(ctx context.Context, m *minilm.Model, res trainer.Result, rep *Report) error {
	if !j.main() {
		return nil
	}
	if err := m.SaveFolderWithTorchScript(ctx, j.OutputDir); err != nil {
		return err
	}
	pt := filepath.Join(j.OutputDir, "model.pt")
	rep.Output["folder"] = j.OutputDir
	rep.Output["torchscript"] = pt
	if err := writeLossCurve(j.OutputDir, res.History, res.Validation); err != nil {
		return err
	}
	rep.Output["loss_curve"] = filepath.Join(j.OutputDir, "loss.svg")
	return WriteReport(filepath.Join(j.OutputDir, "eval.json"), *rep)
}

func (j *Job) mkdirOutput() error {
	if !j.main() {
		return nil
	}
	if err := os.MkdirAll(j.OutputDir, 0o755); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func (j *Job) writeSplit(dir string, s dataset.Split) error {
	if !j.main() {
		return nil
	}
	_, val, err := trainer.SplitValidation(s.Train, j.Hyper)
	if err != nil {
		return err
	}
	return writeSplit(dir, s, val)
}

// writeSplit records a split as train.jsonl and test.jsonl (anchor/positive
// columns), so that the exact evaluation can be rerun, also by the peer.
// validation.jsonl, when there is a validation split, holds the pairs of
// train.jsonl that Train holds out (train.jsonl stays the whole training
// pool: the peer trains on train.jsonl less validation.jsonl).
func writeSplit(dir string, s dataset.Split, validation []dataset.Pair) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]dataset.Pair{"train.jsonl": s.Train, "test.jsonl": s.Test}
	if len(validation) > 0 {
		files["validation.jsonl"] = validation
	} else if err := os.Remove(filepath.Join(dir, "validation.jsonl")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for name, pairs := range files {
		err := atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			return dataset.Write(w, pairs, dataset.FormatJSONL)
		})
		if err != nil {
			return fmt.Errorf("write split: %w", err)
		}
	}
	return nil
}
