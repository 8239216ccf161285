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

// TestInt8ShortTexts: one- and two-token texts (the golden corpus has
// "a" and "." only) against the float32 encoder, which matches
// sentence-transformers to 1e-6 (TestEncodeMatchesGolden). Each text is
// quantized alone, as it now is in any batch. Measured worst: 0.9806
// ("no"); 0.9796 with quantized::linear_dynamic's activation grid, which
// puts each token's largest magnitude, an outlier channel that weighs
// most in a text of three or four tokens, half a step off (RowQuant in
// torch/encoder_ops.cpp).
func TestInt8ShortTexts(t *testing.T) {
	texts := []string{"?", "OK", "hi", "!", "a", ".", "yes", "no", "hello world", "apt-get", "Debian", "42", "é", "why?"}
	f32, err := Load(context.Background(), modelDir(t), Options{Threads: 2})
	require.NoError(t, err)
	defer f32.Close()
	want, err := f32.Encode(context.Background(), texts, 1)
	require.NoError(t, err)
	m, err := Load(context.Background(), modelDir(t), Options{Quantize: Int8, Threads: 2})
	require.NoError(t, err)
	defer m.Close()
	got, err := m.Encode(context.Background(), texts, len(texts))
	require.NoError(t, err)
	worst, at := 1.0, 0
	for i := range texts {
		if c := vecmath.Cosine(got[i], want[i]); c < worst {
			worst, at = c, i
		}
	}
	t.Logf("worst cosine int8 to fp32 over %d short texts: %.4f (%q)", len(texts), worst, texts[at])
	assert.GreaterOrEqual(t, worst, 0.98, "text %q", texts[at])
}
