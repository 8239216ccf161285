package finetune

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/trainer"
)

func TestDimReport(t *testing.T) {
	j := &Job{Hyper: trainer.DefaultHyperParameters()}
	assert.Nil(t, j.dimMetrics(384, nil, nil), "no matryoshka dims, no table")
	j.Hyper.MatryoshkaDims = "64,384"
	m := func(v float64) trainer.IRMetrics { return trainer.IRMetrics{"ndcg@10": v} }
	folds := []FoldReport{
		{Matryoshka: j.dimMetrics(384, []trainer.IRMetrics{m(0.7), m(0.6)}, []trainer.IRMetrics{m(0.8), m(0.7)})},
		{Matryoshka: j.dimMetrics(384, []trainer.IRMetrics{m(0.5), m(0.4)}, []trainer.IRMetrics{m(0.6), m(0.5)})},
	}
	require.Len(t, folds[0].Matryoshka, 2)
	assert.Equal(t, 384, folds[0].Matryoshka[0].Dim, "descending, as MatryoshkaLoss sorts")
	assert.Equal(t, 256, folds[0].Matryoshka[1].BytesPerVector)
	assert.Equal(t, 6.0, folds[0].Matryoshka[1].Smaller)
	mean := meanDimMetrics(folds)
	require.Len(t, mean, 2)
	assert.InDelta(t, 0.6, mean[0].Base["ndcg@10"], 1e-12)
	assert.InDelta(t, 0.6, mean[1].Tuned["ndcg@10"], 1e-12)
	var b bytes.Buffer
	printDimTable(&b, mean)
	assert.Contains(t, b.String(), "64       256    6.0x   0.5000   0.6000  +0.1000")
}
