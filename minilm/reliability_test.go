package minilm

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embtune/embtune/hf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An export killed half way must not leave a folder that loads: its files
// may come from two models (the probe's kill -9 left a new model.safetensors
// beside the old model.pt, and package shipped both).
func TestInterruptedExportIsRefused(t *testing.T) {
	m := sharedTestModel(t)
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, m.SaveFolder(ctx, dir))
	// The next export dies after model.safetensors and most configs are
	// written: README.md, copied late, cannot replace a non-empty folder.
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.Remove(readme))
	require.NoError(t, os.MkdirAll(filepath.Join(readme, "x"), 0o755))
	require.Error(t, m.SaveFolder(ctx, dir))

	_, err := Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not finish")
}

func TestMixedFolderIsRefused(t *testing.T) {
	m := sharedTestModel(t)
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, m.SaveFolder(ctx, dir))
	m2, err := Load(ctx, dir, Options{Threads: 1})
	require.NoError(t, err)
	m2.Close()

	// Another model's weights dropped into the folder after the export.
	weights, _, err := hf.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, hf.WriteSafetensors(filepath.Join(dir, "model.safetensors"), weights, map[string]string{"format": "pt", "other": "model"}))
	_, err = Load(ctx, dir, Options{Threads: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model.safetensors was changed after the export")
}

// setWeight rewrites one F32 weight of the copied model folder in dir.
func setWeight(t *testing.T, dir, name string, edit func(data []byte)) {
	t.Helper()
	p := filepath.Join(dir, "model.safetensors")
	w, meta, err := hf.ReadSafetensors(p)
	require.NoError(t, err)
	raw, ok := w[name]
	require.True(t, ok, name)
	edit(raw.Data)
	require.NoError(t, os.Remove(p)) // a symlink to the shared model
	require.NoError(t, hf.WriteSafetensors(p, w, meta))
}

func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		dir := copyModel(t)
		setWeight(t, dir, "encoder.layer.2.attention.self.query.weight", func(d []byte) {
			binary.LittleEndian.PutUint32(d[4*17:], math.Float32bits(v))
		})
		m, err := Load(context.Background(), dir, Options{Threads: 1})
		if m != nil {
			m.Close()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), "encoder.layer.2.attention.self.query.weight has a non-finite value (NaN or Inf) at element 17")
	}
}

// Finite weights can still overflow in the forward pass; Encode must then
// fail rather than hand out NaN vectors.
func TestEncodeRefusesNonFiniteOutput(t *testing.T) {
	dir := copyModel(t)
	setWeight(t, dir, "embeddings.word_embeddings.weight", func(d []byte) {
		for i := 0; i < len(d); i += 4 {
			binary.LittleEndian.PutUint32(d[i:], math.Float32bits(3e38))
		}
	})
	m, err := Load(context.Background(), dir, Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	vecs, err := m.Encode(context.Background(), []string{"hello", "world"}, 0)
	require.ErrorIs(t, err, ErrNonFinite)
	assert.Nil(t, vecs)
}

func TestLoadRefusesLayerCountBelowWeights(t *testing.T) {
	dir := copyModel(t)
	editJSON(t, filepath.Join(dir, "config.json"), func(c map[string]any) { c["num_hidden_layers"] = 3 })
	m, err := Load(context.Background(), dir, Options{Threads: 1})
	if m != nil {
		m.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the weights have 6 encoder layers, config.json's num_hidden_layers is 3")
}

// With do_lower_case, invalid UTF-8 must be refused, not lower-cased into
// U+FFFD first (never silently replaced).
func TestLowerCasingModelRefusesInvalidUTF8(t *testing.T) {
	dir := copyModel(t)
	editJSON(t, filepath.Join(dir, "sentence_bert_config.json"), func(c map[string]any) { c["do_lower_case"] = true })
	m, err := Load(context.Background(), dir, Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Encode(context.Background(), []string{"fine", "Bad \xff byte"}, 0)
	require.ErrorIs(t, err, hf.ErrInvalidUTF8)
	assert.Contains(t, err.Error(), "text 1")
	_, err = m.WordPieces("Bad \xff byte")
	require.ErrorIs(t, err, hf.ErrInvalidUTF8)
	v, err := m.Encode(context.Background(), []string{"HELLO World"}, 0)
	require.NoError(t, err)
	w, err := m.Encode(context.Background(), []string{"hello world"}, 0)
	require.NoError(t, err)
	assert.Equal(t, w, v)
}

// A killed export leaves hidden temporary files of up to the weights' size;
// the next export into the folder removes them.
func TestSaveFolderRemovesStaleTemporaryFiles(t *testing.T) {
	m := sharedTestModel(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, ".model.safetensors.tmp-123456")
	require.NoError(t, os.WriteFile(stale, make([]byte, 1024), 0o644))
	require.NoError(t, m.SaveFolder(context.Background(), dir))
	assert.NoFileExists(t, stale)
}
