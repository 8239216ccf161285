package finetune

import (
	"encoding/json"
	"io"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/trainer"
)

// Report is what a job writes to OUTPUT/eval.json.
type Report struct {
	Base     trainer.IRMetrics `json:"base,omitempty"`
	Tuned    trainer.IRMetrics `json:"tuned,omitempty"`
	BaseStd  trainer.IRMetrics `json:"base_std,omitempty"`
	TunedStd trainer.IRMetrics `json:"tuned_std,omitempty"`
	Split    map[string]any    `json:"split"`
	Folds    []FoldReport      `json:"folds,omitempty"`
	Pairs    []PairCosine      `json:"pairs,omitempty"`
	// Questions are the held-out split's per-question scores; with folds,
	// each fold holds its own.
	Questions []QuestionScore `json:"questions,omitempty"`
	// PairedTest is the held-out split's paired test.
	PairedTest *PairedTest `json:"paired_test,omitempty"`
	// Comparison is the paired gain over every test question, its
	// interval and the verdict.
	Comparison *Comparison `json:"comparison,omitempty"`
	// Matryoshka holds the metrics at each matryoshka dim (mean over folds).
	Matryoshka []DimMetrics            `json:"matryoshka,omitempty"`
	Training   TrainingReport          `json:"training"`
	Hyper      trainer.HyperParameters `json:"hyperparameters"`
	Output     map[string]string       `json:"output"`
}

// FoldReport is one fold's base and tuned metrics.
type FoldReport struct {
	Fold  int `json:"fold"`
	Train int `json:"train"`
	Test  int `json:"test"`
	// TrainDropped counts the separate training pairs the fold scope left
	// out (generated from the fold's held-out documents).
	TrainDropped int               `json:"train_dropped,omitempty"`
	Base         trainer.IRMetrics `json:"base"`
	Tuned        trainer.IRMetrics `json:"tuned"`
	// Matryoshka holds the metrics at each matryoshka dim.
	Matryoshka []DimMetrics `json:"matryoshka,omitempty"`
	// Validation is what the fold's validation split decided.
	Validation *trainer.ValidationReport `json:"validation,omitempty"`
	// Questions are the fold's per-question test scores, PairedTest their
	// paired test.
	Questions  []QuestionScore `json:"questions,omitempty"`
	PairedTest *PairedTest     `json:"paired_test,omitempty"`
}

// TrainingReport summarises the run that produced the exported model.
type TrainingReport struct {
	Pairs       int     `json:"pairs"`
	Steps       int     `json:"steps"`
	Seconds     float64 `json:"seconds"`
	PairsPerSec float64 `json:"pairs_per_sec"`
	FinalLoss   float64 `json:"final_loss"`
	// Communication is measured in a distributed run.
	Communication *trainer.CommStats `json:"communication,omitempty"`
	// Validation is what the validation split decided: scores per
	// evaluation, best step, WiSE-FT α, and whether the base model won.
	Validation *trainer.ValidationReport `json:"validation,omitempty"`
}

func trainingReport(r trainer.Result) TrainingReport {
	t := TrainingReport{Pairs: r.Pairs, Steps: r.Steps, Seconds: r.Seconds, PairsPerSec: r.PairsPerSec, Communication: r.Comm,
		Validation: r.Validation}
	if n := len(r.History); n > 0 {
		t.FinalLoss = r.History[n-1].Loss
	}
	return t
}

// WriteReport writes eval.json atomically.
func WriteReport(path string, rep Report) error {
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
