package finetune

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/trainer"
)

// foldsReport is a k-fold report with every part PrintReport prints.
func foldsReport() Report {
	m := func(a, b, c float64) trainer.IRMetrics {
		return trainer.IRMetrics{"accuracy@1": a, "accuracy@3": b, "precision@10": c / 10, "mrr@10": (a + b) / 2, "ndcg@10": (a + c) / 2, "map@100": b * 0.9}
	}
	ev := func(step int, epoch, v float64) trainer.Evaluation {
		return trainer.Evaluation{Step: step, Epoch: epoch, Metrics: trainer.IRMetrics{"ndcg@10": v}}
	}
	val := &trainer.ValidationReport{Pairs: 20, TrainPairs: 80, Metric: "ndcg@10", BaseScore: 0.61, BestStep: 9, BestEpoch: 3, BestScore: 0.72,
		LoadedBest: true, Alpha: 0.7, Score: 0.73,
		AlphaScores: []trainer.AlphaScore{{Alpha: 0, Score: 0.61}, {Alpha: 0.7, Score: 0.73}, {Alpha: 1, Score: 0.72}},
		Evaluations: []trainer.Evaluation{ev(0, 0, 0.61), ev(3, 1, 0.66), ev(9, 3, 0.72)}}
	won := &trainer.ValidationReport{Pairs: 20, Metric: "ndcg@10", BaseScore: 0.8, BaseWon: true, Alpha: 0,
		Evaluations: []trainer.Evaluation{ev(0, 0, 0.8), ev(3, 1, 0.7)}}
	return Report{Base: m(0.55, 0.7, 0.9), Tuned: m(0.5833, 0.75, 0.95), BaseStd: m(0.0745, 0.05, 0.03), TunedStd: m(0.078, 0.04, 0.02),
		Folds: []FoldReport{{Fold: 1, Validation: val}, {Fold: 2}, {Fold: 3, Validation: won}},
		Matryoshka: []DimMetrics{
			{Dim: 384, BytesPerVector: 1536, Smaller: 1, Base: m(.5, .6, .7), Tuned: m(.6, .7, .8), BaseStd: m(.01, .02, .03), TunedStd: m(.02, .03, .04)},
			{Dim: 64, BytesPerVector: 256, Smaller: 6, Base: m(.4, .5, .6), Tuned: m(.5, .6, .7)}},
		Training: TrainingReport{Validation: val},
		Pairs: []PairCosine{{Query: "short?", Base: 0.5, Tuned: 0.75},
			{Query: "a much longer query with ünïcode characters that goes on and on past seventy runes for sure", Base: 0.123456, Tuned: -0.1}},
		Output: map[string]string{"folder": "out/x", "torchscript": "out/x/model.pt", "loss_curve": "out/x/loss.svg"}}
}

// TestPrintReport pins what `embtune train` prints after k folds: the
// before/after table with standard deviations, the matryoshka table, the
// validation decisions, the chosen pairs and the output paths. The
// validation lines are trainer's (ValidationReport.Summary and PrintCurve).
func TestPrintReport(t *testing.T) {
	rep := foldsReport()
	var b bytes.Buffer
	PrintReport(&b, rep)
	var curve bytes.Buffer
	rep.Training.Validation.PrintCurve(&curve)
	assert.Equal(t, `metric          base   base±   tuned  tuned±    delta
accuracy@1    0.5500  0.0745  0.5833  0.0780  +0.0333
accuracy@3    0.7000  0.0500  0.7500  0.0400  +0.0500
precision@10  0.0900  0.0030  0.0950  0.0020  +0.0050
mrr@10        0.6250  0.0622  0.6666  0.0590  +0.0416
ndcg@10       0.7250  0.0522  0.7667  0.0490  +0.0416
map@100       0.6300  0.0450  0.6750  0.0360  +0.0450
dim    bytes smaller     base    tuned    delta    base±   tuned±
384     1536    1.0x   0.6000   0.7000  +0.1000   0.0200   0.0300
64       256    6.0x   0.5000   0.6000  +0.1000        -        -
(ndcg@10 at each matryoshka dim: vectors cut to dim, re-normalised)
fold 1 validation: `+rep.Folds[0].Validation.Summary()+`
fold 3 validation: `+rep.Folds[2].Validation.Summary()+"\n"+curve.String()+
		"exported model: "+rep.Training.Validation.Summary()+`
cosine 0.5000 -> 0.7500  "short?"
cosine 0.1235 -> -0.1000  "a much longer query with ünïcode characters that goes on and on past …"
folder       out/x
loss_curve   out/x/loss.svg
torchscript  out/x/model.pt
`, b.String())
	assert.Contains(t, b.String(), "fold 3 validation: the base model scored best")

	// A held-out split: base, tuned and delta, without spreads; nothing else to print.
	b.Reset()
	rep.BaseStd, rep.TunedStd, rep.Matryoshka, rep.Folds, rep.Training, rep.Pairs = nil, nil, nil, nil, TrainingReport{}, nil
	PrintReport(&b, rep)
	assert.Contains(t, b.String(), "metric          base   tuned    delta\naccuracy@1    0.5500  0.5833  +0.0333\n")
	b.Reset()
	PrintReport(&b, Report{Output: map[string]string{"folder": "o"}})
	assert.Equal(t, "folder       o\n", b.String())
}

func TestMeanStd(t *testing.T) {
	folds := []FoldReport{{Base: trainer.IRMetrics{"ndcg@10": 0.5}}, {Base: trainer.IRMetrics{"ndcg@10": 0.7}}}
	mean, std := meanStd(folds, func(f FoldReport) trainer.IRMetrics { return f.Base })
	assert.InDelta(t, 0.6, mean["ndcg@10"], 1e-12)
	assert.InDelta(t, 0.1414213562, std["ndcg@10"], 1e-9, "sample standard deviation (n-1)")
	mean, std = meanStd(folds[:1], func(f FoldReport) trainer.IRMetrics { return f.Base })
	assert.Equal(t, 0.5, mean["ndcg@10"])
	assert.NotContains(t, std, "ndcg@10", "one fold has no spread")
}

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eval.json")
	require.NoError(t, WriteReport(path, Report{Base: trainer.IRMetrics{"ndcg@10": 0.5}, Split: map[string]any{"mode": "none"},
		Hyper: trainer.DefaultHyperParameters(), Output: map[string]string{"folder": "o"}}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	for _, k := range []string{"base", "split", "training", "hyperparameters", "output"} {
		assert.Contains(t, got, k)
	}
	for _, k := range []string{"tuned", "base_std", "folds", "pairs", "matryoshka"} {
		assert.NotContains(t, got, k, "empty parts are left out")
	}
	assert.Equal(t, byte('\n'), b[len(b)-1])
}
