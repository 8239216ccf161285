package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/cpu"

	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/vecmath"
)

// TestInt8QualityAgainstFloat32 holds the int8 encoder (--quantize int8) to
// sentence-transformers' float32 results stored in testdata/golden: NDCG@10
// of InformationRetrievalEvaluator on the Debian FAQ (questions → answers)
// and on the chapter-title task within 0.005, and every golden text's
// vector close to sentence-transformers' by cosine.
//
// The 0.005 line holds where the int8 kernels accumulate in int32 (VNNI).
// On CPUs without VNNI the kernels add product pairs in int16 first, which
// saturates for 8-bit activations: simulated on a VNNI Xeon
// (ONEDNN_MAX_CPU_ISA=AVX2), NDCG@10 on the Debian FAQ moved by +0.0057 and
// the worst cosine stayed 0.982, so there the line is 0.01.
func TestInt8QualityAgainstFloat32(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes about 900 texts")
	}
	ctx := context.Background()
	m, err := minilm.Load(ctx, modelDir(t), minilm.Options{Quantize: minilm.Int8})
	require.NoError(t, err)
	defer m.Close()

	tolerance := 0.005
	if !cpu.X86.HasAVX512VNNI && !cpu.X86.HasAVXVNNI {
		tolerance = 0.01
		t.Logf("no VNNI on this CPU: int8 kernels saturate in int16, NDCG@10 held within %.3f", tolerance)
	}
	for _, task := range []string{"debian-faq", "debian-chapter"} {
		g, _, _ := loadIRGolden(t, task)
		q, err := m.Encode(ctx, g.Queries, 0)
		require.NoError(t, err)
		c, err := m.Encode(ctx, g.Corpus, 0)
		require.NoError(t, err)
		got, err := EvaluateIR(q, c, g.Relevant, DefaultIRConfig())
		require.NoError(t, err)
		want := g.Metrics["ndcg@10"]
		assert.InDelta(t, want, got["ndcg@10"], tolerance, "%s: NDCG@10 int8 %.4f, sentence-transformers fp32 %.4f", task, got["ndcg@10"], want)
		t.Logf("%s: NDCG@10 int8 %.4f, sentence-transformers fp32 %.4f", task, got["ndcg@10"], want)
	}

	dir := filepath.Join("..", "testdata", "golden")
	f, err := os.Open(filepath.Join(dir, "tokens.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct {
			Text string `json:"text"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		texts = append(texts, row.Text)
	}
	require.NoError(t, sc.Err())
	want := readF32Rows(t, filepath.Join(dir, "embeddings.f32"), len(texts), m.Dim())
	got, err := m.Encode(ctx, texts, 32)
	require.NoError(t, err)
	worst, at := 1.0, 0
	for i := range got {
		if c := vecmath.Cosine(got[i], want[i]); c < worst {
			worst, at = c, i
		}
	}
	// The bar. Without smoothing (int8-no-smooth) this was 0.9714
	// (text "."); see the README's int8 section.
	assert.GreaterOrEqual(t, worst, 0.98, "worst cosine to fp32 at text %d %.60q", at, texts[at])
	t.Logf("%d golden texts: worst cosine to sentence-transformers fp32 %.4f (text %d %.40q)", len(texts), worst, at, texts[at])
}
