package minilm

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/vecmath"
)

// TestInt8VectorIndependentOfBatch holds the int8 encoder to one vector per
// text: the same text alone and inside batches of mixed lengths (short
// texts, a 500-token one, text with outlier-heavy punctuation) must come
// back the same. Dynamic int8 quantizes each GEMM's input with a scale
// taken over the rows it is given, so the scale must not span texts.
func TestInt8VectorIndependentOfBatch(t *testing.T) {
	golden, _, _ := readGolden(t)
	long := strings.Repeat("The package manager resolves dependencies before it installs anything. ", 40)
	texts := []string{"OK", "?", ".", "hi", golden[0].Text, long, golden[150].Text, "!!!!???!!!", golden[300].Text, "a"}
	for _, q := range []Quantization{Int8, Int8NoSmooth, Int8ReduceRange} {
		t.Run(string(q), func(t *testing.T) {
			m, err := Load(context.Background(), modelDir(t), Options{Quantize: q, Threads: 2})
			require.NoError(t, err)
			defer m.Close()
			alone, err := m.Encode(context.Background(), texts, 1)
			require.NoError(t, err)
			worst := 1.0
			for _, bs := range []int{2, 3, 4, len(texts)} {
				got, err := m.Encode(context.Background(), texts, bs)
				require.NoError(t, err)
				for i := range texts {
					c := vecmath.Cosine(got[i], alone[i])
					worst = min(worst, c)
					assert.GreaterOrEqual(t, c, 0.99999, "batch %d, text %d %.30q", bs, i, texts[i])
				}
			}
			// The short texts again, each batched with the long one.
			for _, i := range []int{0, 1, 2, 3, 9} {
				got, err := m.Encode(context.Background(), []string{long, texts[i]}, 2)
				require.NoError(t, err)
				c := vecmath.Cosine(got[1], alone[i])
				worst = min(worst, c)
				assert.GreaterOrEqual(t, c, 0.99999, "text %q after the long one", texts[i])
			}
			t.Logf("worst cosine, batched to alone: %.9f", worst)
		})
	}
}
