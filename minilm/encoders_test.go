package minilm

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/hf"
	"github.com/embtune/embtune/internal/testmodel"
	"github.com/embtune/embtune/torch"
)

// encoderCosine is the least cosine to sentence-transformers' vectors
// allowed per text.
const encoderCosine = 0.99999

func worstCosine(t *testing.T, got [][]float32, want [][]float64) float64 {
	t.Helper()
	require.Len(t, got, len(want))
	worst := 1.0
	for i := range want {
		require.Len(t, got[i], len(want[i]), "row %d", i)
		var dot, na, nb float64
		for j := range want[i] {
			a, b := float64(got[i][j]), want[i][j]
			dot, na, nb = dot+a*b, na+a*a, nb+b*b
		}
		worst = math.Min(worst, dot/math.Sqrt(na*nb))
	}
	return worst
}

// idsForward runs token id sequences through mod in padded batches of 5.
// Runs on m's worker.
func idsForward(m *Model, mod *torch.Module, seqs [][]int64) ([][]float32, error) {
	var out [][]float32
	for start := 0; start < len(seqs); start += 5 {
		part := seqs[start:min(start+5, len(seqs))]
		ids, mask, err := PadBatch(part, m.Tokenizer.PadID()).Tensors(torch.CPU)
		if err != nil {
			return nil, err
		}
		emb, err := mod.Forward(ids, mask)
		ids.Close()
		mask.Close()
		if err != nil {
			return nil, err
		}
		flat, err := emb.Float32s()
		emb.Close()
		if err != nil {
			return nil, err
		}
		dim := len(flat) / len(part)
		for i := range part {
			out = append(out, flat[i*dim:(i+1)*dim])
		}
	}
	return out, nil
}

// TestEncoderFamiliesMatchSentenceTransformers loads each non-BERT family's
// golden folder (testdata/golden/encoders, from tools/golden/encoders.py)
// and compares with sentence-transformers: the encoder fed
// sentence-transformers' own input ids (so that it is checked apart from
// the tokenizer) on the CPU module and on the exported stock-operator
// module, then Encode, EncodeQueries and EncodeDocuments from text.
func TestEncoderFamiliesMatchSentenceTransformers(t *testing.T) {
	ctx := context.Background()
	for _, family := range testmodel.EncoderFamilies(t) {
		t.Run(family, func(t *testing.T) {
			dir, g := testmodel.EncoderFolder(t, family)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, g.ModelType, m.ModelType())
			require.Equal(t, g.Dim, m.Dim())
			require.Equal(t, g.MaxSeqLength, m.MaxSeqLength)

			var cpu, exported [][]float32
			for start := 0; start < len(g.InputIDs); start += 7 {
				v, err := m.EncodeIDs(ctx, g.InputIDs[start:min(start+7, len(g.InputIDs))])
				require.NoError(t, err)
				cpu = append(cpu, v...)
			}
			require.NoError(t, m.worker.Do(ctx, func() error {
				mod, err := m.exportModule()
				if err != nil {
					return err
				}
				defer mod.Close()
				exported, err = idsForward(m, mod, g.InputIDs)
				return err
			}))
			cc, ce := worstCosine(t, cpu, g.Encode), worstCosine(t, exported, g.Encode)
			t.Logf("golden ids: worst cosine CPU module %.9f, exported module %.9f", cc, ce)
			assert.GreaterOrEqual(t, cc, encoderCosine, "CPU module")
			assert.GreaterOrEqual(t, ce, encoderCosine, "exported module")
			assert.LessOrEqual(t, maxAbsDiff(t, cpu, g.Encode), familyTolerance)
			assert.LessOrEqual(t, maxAbsDiff(t, exported, g.Encode), familyTolerance)

			for i, text := range g.Texts {
				ids, _, err := m.Prepare(text)
				require.NoError(t, err)
				assert.Equal(t, g.InputIDs[i], ids, "text %d's ids", i)
			}
			enc, err := m.Encode(ctx, g.Texts, 7)
			require.NoError(t, err)
			q, err := m.EncodeQueries(ctx, g.Texts, 7)
			require.NoError(t, err)
			d, err := m.EncodeDocuments(ctx, g.Texts, 7)
			require.NoError(t, err)
			de, dq, dd := worstCosine(t, enc, g.Encode), worstCosine(t, q, g.EncodeQuery), worstCosine(t, d, g.EncodeDocument)
			t.Logf("from text: worst cosine encode %.9f encode_query %.9f encode_document %.9f", de, dq, dd)
			assert.GreaterOrEqual(t, de, encoderCosine, "encode")
			assert.GreaterOrEqual(t, dq, encoderCosine, "encode_query")
			assert.GreaterOrEqual(t, dd, encoderCosine, "encode_document")
		})
	}
}

// TestEncoderFamiliesExport writes each family's folder with its TorchScript
// module and loads it back: the tensors keep the family's own names and
// shapes, and the vectors come back.
func TestEncoderFamiliesExport(t *testing.T) {
	ctx := context.Background()
	for _, family := range testmodel.EncoderFamilies(t) {
		t.Run(family, func(t *testing.T) {
			dir, g := testmodel.EncoderFolder(t, family)
			m, err := Load(ctx, dir, Options{Threads: 1})
			require.NoError(t, err)
			defer m.Close()
			out := filepath.Join(t.TempDir(), "export")
			require.NoError(t, m.SaveFolderWithTorchScript(ctx, out))
			orig, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
			require.NoError(t, err)
			saved, _, err := hf.ReadSafetensors(filepath.Join(out, "model.safetensors"))
			require.NoError(t, err)
			require.Len(t, saved, len(orig))
			for name, o := range orig {
				s, ok := saved[name]
				if assert.True(t, ok, "%s is written back under its own name", name) {
					assert.Equal(t, o.Shape, s.Shape, name)
				}
			}
			back, err := Load(ctx, out, Options{Threads: 1})
			require.NoError(t, err)
			defer back.Close()
			enc, err := back.Encode(ctx, g.Texts, 32)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, worstCosine(t, enc, g.Encode), encoderCosine)

			var ts [][]float32
			require.NoError(t, m.worker.Do(ctx, func() error {
				mod, err := torch.LoadModule(filepath.Join(out, "model.pt"), torch.CPU)
				if err != nil {
					return err
				}
				defer mod.Close()
				ts, err = idsForward(m, mod, g.InputIDs)
				return err
			}))
			c := worstCosine(t, ts, g.Encode)
			t.Logf("saved model.pt: worst cosine %.9f", c)
			assert.GreaterOrEqual(t, c, encoderCosine, "model.pt")
		})
	}
}

// TestQuantizationRefusedWithReason: a family without an int8 form says so.
func TestQuantizationRefusedWithReason(t *testing.T) {
	dir, _ := testmodel.EncoderFolder(t, "mpnet")
	_, err := Load(context.Background(), dir, Options{Threads: 1, Quantize: Int8})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `quantization int8 is not available for model_type "mpnet"`)
	assert.Contains(t, err.Error(), "relative position bias")
}

// TestXLMRobertaInt8IsBERTInt8: XLM-RoBERTa is BERT with positions counted
// from padding_idx+1. The golden xlm-roberta folder rewritten as a BERT
// folder (position rows shifted down by padding_idx+1) encodes the same
// vectors in float32, and the same again with --quantize int8: the int8
// encoder numbers XLM-R's positions as its float32 module does.
func TestXLMRobertaInt8IsBERTInt8(t *testing.T) {
	ctx := context.Background()
	xlmr, g := testmodel.EncoderFolder(t, "xlm-roberta")
	bert, _ := testmodel.EncoderFolder(t, "xlm-roberta")
	raw, err := os.ReadFile(filepath.Join(bert, "config.json"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	pad := int(cfg["pad_token_id"].(float64))
	cfg["model_type"], cfg["architectures"] = "bert", []string{"BertModel"}
	cfg["max_position_embeddings"] = int(cfg["max_position_embeddings"].(float64)) - pad - 1
	raw, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bert, "config.json"), raw, 0o644))
	weights, meta, err := hf.ReadSafetensors(filepath.Join(bert, "model.safetensors"))
	require.NoError(t, err)
	pos := weights["embeddings.position_embeddings.weight"]
	require.Equal(t, hf.F32, pos.DType)
	row := int(pos.Shape[1]) * 4
	pos.Data, pos.Shape = pos.Data[(pad+1)*row:], []int64{pos.Shape[0] - int64(pad) - 1, pos.Shape[1]}
	weights["embeddings.position_embeddings.weight"] = pos
	require.NoError(t, hf.WriteSafetensors(filepath.Join(bert, "model.safetensors"), weights, meta))

	for _, q := range []Quantization{NoQuantization, Int8} {
		a, err := Load(ctx, xlmr, Options{Threads: 1, Quantize: q})
		require.NoError(t, err, "xlm-roberta %q", q)
		b, err := Load(ctx, bert, Options{Threads: 1, Quantize: q})
		require.NoError(t, err, "as bert %q", q)
		assert.Equal(t, "bert", b.ModelType())
		va, err := a.Encode(ctx, g.Texts, 7)
		require.NoError(t, err)
		vb, err := b.Encode(ctx, g.Texts, 7)
		require.NoError(t, err)
		wide := make([][]float64, len(vb))
		for i, v := range vb {
			for _, x := range v {
				wide[i] = append(wide[i], float64(x))
			}
		}
		c := worstCosine(t, va, wide)
		t.Logf("quantization %q: worst cosine xlm-roberta to its BERT form %.9f", q, c)
		assert.GreaterOrEqual(t, c, 0.9999999, "quantization %q", q)
		if q == Int8 {
			t.Logf("int8: worst cosine to sentence-transformers fp32 %.6f", worstCosine(t, va, g.Encode))
		}
		a.Close()
		b.Close()
	}
}

// TestAllMPNetBaseV2MatchesSentenceTransformers runs the real
// all-mpnet-base-v2 (make mpnet) on sentence-transformers' input ids, on the
// CPU module and the exported module, then from text.
//
// Package hf's tokenizer does not yet read added tokens with normalized or
// lstrip set (all-mpnet-base-v2's <unk> and <mask>), so the test loads the
// folder with those flags cleared in a copy of tokenizer.json. The encoder
// is checked on sentence-transformers' own ids, apart from the tokenizer;
// the ids from text are compared too (no golden text contains <unk> or
// <mask>, the only tokens the flags concern).
func TestAllMPNetBaseV2MatchesSentenceTransformers(t *testing.T) {
	ctx := context.Background()
	g := testmodel.ReadReal(t, "all-mpnet-base-v2")
	m, err := Load(ctx, withPlainAddedTokens(t, testmodel.MPNetDir(t)), Options{})
	require.NoError(t, err)
	defer m.Close()
	assert.Equal(t, "mpnet", m.ModelType())
	require.Equal(t, g.Dim, m.Dim())
	require.Equal(t, g.MaxSeqLength, m.MaxSeqLength)
	cpu, err := m.EncodeIDs(ctx, g.InputIDs)
	require.NoError(t, err)
	var exported [][]float32
	require.NoError(t, m.worker.Do(ctx, func() error {
		mod, err := m.exportModule()
		if err != nil {
			return err
		}
		defer mod.Close()
		exported, err = idsForward(m, mod, g.InputIDs)
		return err
	}))
	cc, ce := worstCosine(t, cpu, g.Encode), worstCosine(t, exported, g.Encode)
	t.Logf("golden ids: worst cosine CPU module %.9f, exported module %.9f", cc, ce)
	assert.GreaterOrEqual(t, cc, encoderCosine, "CPU module")
	assert.GreaterOrEqual(t, ce, encoderCosine, "exported module")

	for i, text := range g.Texts {
		ids, _, err := m.Prepare(text)
		require.NoError(t, err)
		assert.Equal(t, g.InputIDs[i], ids, "text %d's ids", i)
	}
	enc, err := m.Encode(ctx, g.Texts, 7)
	require.NoError(t, err)
	c := worstCosine(t, enc, g.Encode)
	t.Logf("from text: worst cosine encode %.9f", c)
	assert.GreaterOrEqual(t, c, encoderCosine, "encode")
}

// withPlainAddedTokens links src's files into a temporary folder, with
// tokenizer.json's added tokens' normalized/lstrip/rstrip/single_word flags
// cleared.
func withPlainAddedTokens(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() != "tokenizer.json" {
			require.NoError(t, os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())))
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	require.NoError(t, err)
	var tj map[string]any
	require.NoError(t, json.Unmarshal(b, &tj))
	added, _ := tj["added_tokens"].([]any)
	for _, a := range added {
		tok := a.(map[string]any)
		for _, k := range []string{"normalized", "lstrip", "rstrip", "single_word"} {
			tok[k] = false
		}
	}
	b, err = json.Marshal(tj)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	return dir
}

// TestModernBERTRunsUnpadded: ModernBERT's encoder computes only the real
// tokens (its padding positions come back as zeros, as ModernBertModel's
// unpadded output is padded again), on the CPU module and on the exported
// stock-operator one; its vectors are sentence-transformers' (above).
func TestModernBERTRunsUnpadded(t *testing.T) {
	ctx := context.Background()
	dir, g := testmodel.EncoderFolder(t, "modernbert")
	m, err := Load(ctx, dir, Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	seqs := [][]int64{g.InputIDs[0], g.InputIDs[1], g.InputIDs[2]}
	b := PadBatch(seqs, m.Tokenizer.PadID())
	require.NoError(t, m.Worker().Do(ctx, func() error {
		for _, cpu := range []bool{true, false} {
			mod, err := m.module.Redefine("MiniLM", m.fam.source(m.Folder.Config, headOf(m.Folder), cpu))
			if err != nil {
				return err
			}
			ids, mask, err := b.Tensors(torch.CPU)
			if err != nil {
				mod.Close()
				return err
			}
			out, err := mod.Run("token_embeddings", ids, mask)
			ids.Close()
			mask.Close()
			mod.Close()
			if err != nil {
				return err
			}
			shape, err := out[0].Shape()
			require.NoError(t, err)
			flat, err := out[0].Float32s()
			require.NoError(t, err)
			for _, o := range out {
				o.Close()
			}
			hidden := int(shape[2])
			pads := 0
			for i, s := range seqs {
				for p := range int(shape[1]) {
					row := flat[(i*int(shape[1])+p)*hidden : (i*int(shape[1])+p+1)*hidden]
					zero := !slices.ContainsFunc(row, func(v float32) bool { return v != 0 })
					if p < len(s) {
						assert.False(t, zero, "cpu %v: text %d token %d is computed", cpu, i, p)
					} else {
						assert.True(t, zero, "cpu %v: text %d padding %d is zero", cpu, i, p)
						pads++
					}
				}
			}
			assert.Positive(t, pads, "the batch has padding")
		}
		return nil
	}))
}
