package minilm

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/torch"
)

// familyTolerance is the largest |embtune - sentence-transformers| allowed
// per component.
const familyTolerance = 1e-5

func maxAbsDiff(t *testing.T, got [][]float32, want [][]float64) float64 {
	t.Helper()
	require.Len(t, got, len(want))
	worst := 0.0
	for i := range want {
		require.Len(t, got[i], len(want[i]), "row %d", i)
		for j := range want[i] {
			worst = math.Max(worst, math.Abs(float64(got[i][j])-want[i][j]))
		}
	}
	return worst
}

// TestFamiliesMatchSentenceTransformers loads each golden head variant
// (testdata/golden/families, from tools/golden/families.py) and compares
// Encode, EncodeQueries and EncodeDocuments with sentence-transformers'
// encode, encode_query and encode_document, on the unpadded CPU module and
// on the padded stock-operator module that export and CUDA use (the
// TorchScript export), with small batches so that padding matters.
func TestFamiliesMatchSentenceTransformers(t *testing.T) {
	ctx := context.Background()
	for _, v := range testmodel.FamilyVariants(t) {
		t.Run(v, func(t *testing.T) {
			dir, g := testmodel.AssembleFamily(t, v)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			require.Equal(t, g.Dim, m.Dim())
			require.Equal(t, g.MaxSeqLength, m.MaxSeqLength)
			enc, err := m.Encode(ctx, g.Texts, 7)
			require.NoError(t, err)
			q, err := m.EncodeQueries(ctx, g.Texts, 7)
			require.NoError(t, err)
			d, err := m.EncodeDocuments(ctx, g.Texts, 7)
			require.NoError(t, err)
			de, dq, dd := maxAbsDiff(t, enc, g.Encode), maxAbsDiff(t, q, g.EncodeQuery), maxAbsDiff(t, d, g.EncodeDocument)
			t.Logf("max |diff| encode %.2g encode_query %.2g encode_document %.2g", de, dq, dd)
			assert.LessOrEqual(t, de, familyTolerance, "encode")
			assert.LessOrEqual(t, dq, familyTolerance, "encode_query")
			assert.LessOrEqual(t, dd, familyTolerance, "encode_document")

			// The padded module, as exported.
			padded := exportedForward(t, m, g.Texts, m.Prompt(hf.RoleQuery))
			dp := maxAbsDiff(t, padded, g.EncodeQuery)
			t.Logf("max |diff| exported module, encode_query %.2g", dp)
			assert.LessOrEqual(t, dp, familyTolerance, "exported module")
		})
	}
}

// exportedForward runs texts (with prompt) through the stock-operator
// module that SaveTorchScript writes, in padded batches of 5.
func exportedForward(t *testing.T, m *Model, texts []string, prompt string) [][]float32 {
	t.Helper()
	var out [][]float32
	err := m.worker.Do(context.Background(), func() error {
		mod, err := m.exportModule()
		if err != nil {
			return err
		}
		defer mod.Close()
		for start := 0; start < len(texts); start += 5 {
			var seqs [][]int64
			for _, text := range texts[start:min(start+5, len(texts))] {
				ids, _, err := m.Prepare(prompt + text)
				if err != nil {
					return err
				}
				seqs = append(seqs, ids)
			}
			b := PadBatch(seqs, m.Tokenizer.PadID())
			ids, mask, err := b.Tensors(torch.CPU)
			if err != nil {
				return err
			}
			emb, err := mod.Forward(ids, mask)
			ids.Close()
			mask.Close()
			if err != nil {
				return err
			}
			flat, err := emb.Float32s()
			emb.Close()
			if err != nil {
				return err
			}
			dim := len(flat) / len(seqs)
			for i := range seqs {
				out = append(out, flat[i*dim:(i+1)*dim])
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestFamiliesExportRoundTrip saves a Dense + Normalize folder and loads it
// back: the head's files and the Dense weights come back, so the same
// vectors do.
func TestFamiliesExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, v := range []string{"dense-relu-dense-tanh", "prompts-default", "cls-mean-max"} {
		t.Run(v, func(t *testing.T) {
			dir, g := testmodel.AssembleFamily(t, v)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			out := filepath.Join(t.TempDir(), "export")
			require.NoError(t, m.SaveFolder(ctx, out))
			for _, d := range m.Folder.Dense {
				_, err := os.Stat(filepath.Join(out, d.Path, "model.safetensors"))
				require.NoError(t, err)
			}
			main, _, err := hf.ReadSafetensors(filepath.Join(out, "model.safetensors"))
			require.NoError(t, err)
			for name := range main {
				assert.NotContains(t, name, denseParamPrefix, "Dense tensors belong in their own folder")
			}
			back, err := Load(ctx, out, Options{Threads: 1})
			require.NoError(t, err)
			defer back.Close()
			assert.Equal(t, m.Folder.Prompts, back.Folder.Prompts)
			assert.Equal(t, m.Folder.DefaultPromptName, back.Folder.DefaultPromptName)
			enc, err := back.Encode(ctx, g.Texts, 32)
			require.NoError(t, err)
			assert.LessOrEqual(t, maxAbsDiff(t, enc, g.Encode), familyTolerance)
		})
	}
}

func TestUnknownPromptNameIsRefusedAtLoad(t *testing.T) {
	dir, _ := testmodel.AssembleFamily(t, "e5-prompts")
	_, err := Load(context.Background(), dir, Options{QueryPrompt: hf.PromptChoice{Name: "search_query"}})
	require.ErrorIs(t, err, hf.ErrUnknownPrompt)
	assert.Contains(t, err.Error(), `"search_query"`)
	assert.Contains(t, err.Error(), `"passage"`, "the error lists the names the folder defines")
}
