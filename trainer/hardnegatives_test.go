package trainer

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/dataset"
)

// TestMineHardNegativesMatchesSentenceTransformers compares with
// util.mine_hard_negatives on the same 40 Debian FAQ pairs
// (testdata/golden/hard_negatives.json, tools/golden/generate.py negatives).
func TestMineHardNegativesMatchesSentenceTransformers(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "hard_negatives.json"))
	require.NoError(t, err)
	var golden struct {
		MaxSeqLength int `json:"max_seq_length"`
		Pairs        int `json:"pairs"`
		Cases        map[string]struct {
			N      int     `json:"num_negatives"`
			Margin float64 `json:"absolute_margin"`
			Rows   []struct {
				Anchor    string   `json:"anchor"`
				Positive  string   `json:"positive"`
				Negatives []string `json:"negatives"`
			} `json:"rows"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &golden))
	all, err := dataset.Load(filepath.Join("..", "testdata", "data", "debian-faq.jsonl"))
	require.NoError(t, err)
	pairs := all[:golden.Pairs]

	m := loadModel(t, golden.MaxSeqLength)
	require.Len(t, golden.Cases, 2)
	for name, c := range golden.Cases {
		t.Run(name, func(t *testing.T) {
			mined, dropped, err := MineHardNegatives(context.Background(), m, pairs, c.N, c.Margin)
			require.NoError(t, err)
			assert.Equal(t, len(pairs)-len(c.Rows), dropped)
			want := map[[2]string][]string{}
			for _, r := range c.Rows {
				want[[2]string{r.Anchor, r.Positive}] = r.Negatives
			}
			require.Len(t, mined, len(c.Rows))
			for _, p := range mined {
				w, ok := want[[2]string{p.Anchor, p.Positive}]
				require.True(t, ok, "sentence-transformers dropped %q", p.Anchor)
				assert.Equal(t, w, p.Negatives, "negatives of %q", p.Anchor)
			}
		})
	}
}

func TestMineHardNegativesBadInput(t *testing.T) {
	m := loadModel(t, 32)
	pairs := []dataset.Pair{{Anchor: "a", Positive: "b"}, {Anchor: "c", Positive: "d"}}
	_, _, err := MineHardNegatives(context.Background(), m, pairs, 0, 0)
	assert.ErrorContains(t, err, "at least 1")
	_, _, err = MineHardNegatives(context.Background(), m, []dataset.Pair{{Anchor: "a", Positive: "b", Negatives: []string{"x"}}}, 1, 0)
	assert.ErrorContains(t, err, "already has negatives")
	// Two pairs have one candidate each; asking for two drops both.
	mined, dropped, err := MineHardNegatives(context.Background(), m, pairs, 2, 0)
	require.NoError(t, err)
	assert.Empty(t, mined)
	assert.Equal(t, 2, dropped)
}
