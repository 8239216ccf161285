package hf

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLeftTruncationGolden: every corpus text longer than a kind's
// max_seq_length, cut on the left, gives the ids of HF tokenizers'
// enable_truncation(max_seq_length, direction="left") (tools/golden/run.sh
// tokenizers-left), and the right cut of the same text is still Encode's.
func TestLeftTruncationGolden(t *testing.T) {
	kinds := readKinds(t)
	texts := readCorpus(t)
	type row struct {
		Kind string  `json:"kind"`
		Text int     `json:"text"`
		IDs  []int64 `json:"ids"`
	}
	rows := readGzLines[row](t, filepath.Join("..", "testdata", "tokenizers", "left-truncation.jsonl.gz"))
	byKind := map[string][]row{}
	for _, r := range rows {
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	require.Contains(t, byKind, "minilm-wordpiece")
	require.Contains(t, byKind, "gpt2-bytelevel-bpe")
	require.Contains(t, byKind, "t5-unigram-bytefallback")
	for name, k := range kinds.Kinds {
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, byKind[name], "the golden has no cut text of this kind")
			tok := loadKind(t, name, k)
			bad := 0
			for _, r := range byKind[name] {
				require.Less(t, r.Text, len(texts))
				got, cut, err := tok.EncodeTruncating(texts[r.Text], k.MaxSeqLength, TruncateLeft)
				require.NoError(t, err)
				assert.True(t, cut, "text %d", r.Text)
				assert.Len(t, got, k.MaxSeqLength, "text %d", r.Text)
				if !slices.Equal(got, r.IDs) {
					bad++
					if bad <= 3 {
						t.Errorf("text %d %q:\n got %v\nwant %v", r.Text, clip(texts[r.Text]), got, r.IDs)
					}
				}
				right, _, err := tok.EncodeTruncating(texts[r.Text], k.MaxSeqLength, TruncateRight)
				require.NoError(t, err)
				enc, _, err := tok.Encode(texts[r.Text], k.MaxSeqLength)
				require.NoError(t, err)
				assert.Equal(t, enc, right)
			}
			assert.Zero(t, bad, "%d of %d texts differ", bad, len(byKind[name]))
		})
	}
}

// TestParseTruncationDirection: TEI's two spellings, nothing else.
func TestParseTruncationDirection(t *testing.T) {
	for s, want := range map[string]Truncation{"Right": TruncateRight, "Left": TruncateLeft} {
		got, err := ParseTruncationDirection(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"left", "right", "LEFT", "", "start", "Left "} {
		_, err := ParseTruncationDirection(s)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), `"Right" or "Left"`)
	}
}
