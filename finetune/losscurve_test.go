package finetune

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/trainer"
)

// TestLossPlotHasAxes: loss.svg is a plot with tick values on both axes,
// axis labels and a legend, in one panel for the loss and one for the
// validation metric.
func TestLossPlotHasAxes(t *testing.T) {
	var history []trainer.StepLog
	for s := 1; s <= 30; s++ {
		history = append(history, trainer.StepLog{Step: s, Epoch: float64(s) / 3, Loss: 1.5 / float64(s), LR: 2e-5})
	}
	val := &trainer.ValidationReport{Metric: "ndcg@10", BaseScore: 0.61, BestStep: 9, BestScore: 0.72, Alpha: 0.7, Score: 0.73,
		AlphaScores: []trainer.AlphaScore{{Alpha: 0, Score: 0.61}, {Alpha: 0.7, Score: 0.73}, {Alpha: 1, Score: 0.72}}}
	for s, v := range map[int]float64{0: 0.61, 3: 0.66, 6: 0.70, 9: 0.72, 12: 0.69} {
		val.Evaluations = append(val.Evaluations, trainer.Evaluation{Step: s, Metrics: trainer.IRMetrics{"ndcg@10": v}})
	}
	sortEvaluations(val.Evaluations)
	dir := t.TempDir()
	require.NoError(t, writeLossCurve(dir, history, val))
	b, err := os.ReadFile(filepath.Join(dir, "loss.svg"))
	require.NoError(t, err)
	svg := string(b)
	texts := map[string]bool{}
	for _, m := range regexp.MustCompile(`<text[^>]*>([^<]*)</text>`).FindAllStringSubmatch(svg, -1) {
		texts[m[1]] = true
	}
	for _, want := range []string{"step", "loss", "ndcg@10", "training loss per step", "validation ndcg@10",
		"base model 0.6100", "best: step 9, 0.7200", "output: WiSE-FT α 0.7, 0.7300",
		"0", "10", "20", "30", "0.0", "0.8", "1.6", "0.6", "0.7"} {
		assert.True(t, texts[want], "no %q text in loss.svg: %v", want, texts)
	}
	csv, err := os.ReadFile(filepath.Join(dir, "validation.csv"))
	require.NoError(t, err)
	assert.Equal(t, "step,epoch,ndcg@10\n0,0.0000,0.610000\n3,0.0000,0.660000\n6,0.0000,0.700000\n9,0.0000,0.720000\n12,0.0000,0.690000\n", string(csv))

	// Without validation the plot is the loss panel alone.
	require.NoError(t, writeLossCurve(dir, history, nil))
	b, err = os.ReadFile(filepath.Join(dir, "loss.svg"))
	require.NoError(t, err)
	assert.Contains(t, string(b), ">training loss per step<")
	assert.NotContains(t, string(b), "ndcg@10")
}

func sortEvaluations(e []trainer.Evaluation) {
	for i := range e {
		for j := i + 1; j < len(e); j++ {
			if e[j].Step < e[i].Step {
				e[i], e[j] = e[j], e[i]
			}
		}
	}
}
