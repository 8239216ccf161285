package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/minilm"
	"github.com/embtune/embtune/torch"
)

// setConfig rewrites fields of dir/config.json.
func setConfig(t *testing.T, dir string, fields map[string]any) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	for k, v := range fields {
		c[k] = v
	}
	b, err = json.Marshal(c)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestGradientCheckpointingStep: an optimizer step with
// --gradient-checkpointing equals the step without it (loss within 1e-6,
// every weight within 1e-5 after the update) on BERT (the heads' tiny
// golden folder, dropout 0.1), ModernBERT (its golden folder with every
// dropout set to 0.1), and the decoders Qwen3 and Gemma 3; with dropout
// on (training mode: the masks replay per layer) and off, and composed
// with GradCache (--mini-batch-size) and bf16 autocast.
func TestGradientCheckpointingStep(t *testing.T) {
	ctx := context.Background()
	folders := map[string]func(t *testing.T) string{
		"bert": func(t *testing.T) string {
			dir, _ := testmodel.AssembleFamily(t, "dense-tanh-normalize")
			return dir
		},
		"modernbert": func(t *testing.T) string {
			dir, _ := testmodel.EncoderFolder(t, "modernbert")
			setConfig(t, dir, map[string]any{"attention_dropout": 0.1, "mlp_dropout": 0.1, "embedding_dropout": 0.1})
			return dir
		},
		"qwen3": func(t *testing.T) string {
			dir, _ := testmodel.EncoderFolder(t, "qwen3")
			return dir
		},
		"gemma3_text": func(t *testing.T) string {
			dir, _ := testmodel.EncoderFolder(t, "gemma3_text")
			return dir
		},
	}
	pairs := smallPairs(8)
	batch := []int{0, 1, 2, 3, 4, 5, 6, 7}
	for _, family := range []string{"bert", "modernbert", "qwen3", "gemma3_text"} {
		for _, v := range []struct {
			dropout bool
			mini    int
			bf16    bool
		}{{true, 0, false}, {false, 0, false}, {true, 3, false}, {true, 0, true}, {true, 3, true}} {
			t.Run(fmt.Sprintf("%s/dropout=%v/mini=%d/bf16=%v", family, v.dropout, v.mini, v.bf16), func(t *testing.T) {
				dir := folders[family](t)
				hp := DefaultHyperParameters()
				hp.Seed, hp.MaxSeqLength, hp.MiniBatchSize, hp.BF16 = 7, 32, v.mini, v.bf16
				require.NoError(t, hp.Validate())
				step := func(ckpt bool) (float64, map[string][]float32) {
					m, err := minilm.Load(ctx, dir, minilm.Options{Threads: 1})
					require.NoError(t, err)
					defer m.Close()
					hp := hp
					hp.GradientCheckpointing = ckpt
					r, err := newRun(ctx, m, pairs, hp)
					require.NoError(t, err)
					require.Equal(t, ckpt, m.GradientCheckpointing())
					if !v.dropout {
						require.NoError(t, m.Worker().Do(ctx, func() error { return m.Module().Train(false) }))
					}
					loss, _, err := r.step(batch, 1e-3)
					require.NoError(t, err)
					// A second step from the generator state the first left.
					loss2, _, err := r.step(batch, 1e-3)
					require.NoError(t, err)
					r.close()
					require.False(t, m.GradientCheckpointing(), "the run puts the plain module back")
					out := map[string][]float32{}
					for name, w := range weightsOf(t, m) {
						if w.DType == hf.F32 && len(w.Data) > 0 {
							out[name] = f32s(w.Data)
						}
					}
					return loss + loss2, out
				}
				plainLoss, plain := step(false)
				ckptLoss, ckpt := step(true)
				t.Logf("loss of two steps %.9f, with checkpointing %.9f", plainLoss, ckptLoss)
				assert.InDelta(t, plainLoss, ckptLoss, 1e-6, "loss")
				require.Equal(t, len(plain), len(ckpt))
				worst := 0.0
				for name, p := range plain {
					c := ckpt[name]
					require.Len(t, c, len(p), name)
					for i := range p {
						worst = math.Max(worst, math.Abs(float64(p[i]-c[i])))
					}
				}
				t.Logf("weights: max |Δ| %.3g", worst)
				assert.LessOrEqual(t, worst, 1e-5)
			})
		}
	}
	assert.Zero(t, torch.Leaked())
}
