package finetune

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/trainer"
)

func TestFormatTable(t *testing.T) {
	base := trainer.IRMetrics{"ndcg@10": 0.5, "accuracy@1": 0.25}
	tuned := trainer.IRMetrics{"ndcg@10": 0.75, "accuracy@1": 0.125, "map@100": 0.5}
	var buf bytes.Buffer
	require.NoError(t, FormatTable(&buf, []string{"base", "tuned", "delta"}, map[string]trainer.IRMetrics{"base": base, "tuned": tuned}))
	assert.Equal(t, strings.Join([]string{
		"metric        base   tuned    delta",
		"accuracy@1  0.2500  0.1250  -0.1250",
		"ndcg@10     0.5000  0.7500  +0.2500",
		"map@100          -  0.5000        -",
		"",
	}, "\n"), buf.String())

	// Headers with "±" align by characters, not bytes.
	buf.Reset()
	require.NoError(t, FormatTable(&buf, []string{"base", "base±", "tuned±"},
		map[string]trainer.IRMetrics{"base": base, "base±": base, "tuned±": base}))
	assert.Equal(t, strings.Join([]string{
		"metric        base   base±  tuned±",
		"accuracy@1  0.2500  0.2500  0.2500",
		"ndcg@10     0.5000  0.5000  0.5000",
		"",
	}, "\n"), buf.String())

	// One column, as `embtune eval` prints it.
	buf.Reset()
	require.NoError(t, FormatTable(&buf, []string{"model"}, map[string]trainer.IRMetrics{"model": {"precision@10": 0.0625}}))
	assert.Equal(t, "metric         model\nprecision@10  0.0625\n", buf.String())
}
