package sagemaker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/exportset"
)

// The probe's crash left a new model.safetensors beside the old model.pt
// and package shipped both; an export that did not finish, or a file
// changed after it, must be refused.
func TestPackageRefusesIncompleteOrMixedExport(t *testing.T) {
	src := fakeOutputFolder(t)
	require.NoError(t, exportset.Begin(src))
	require.NoError(t, os.WriteFile(filepath.Join(src, "model.safetensors"), []byte("new weights"), 0o644))
	_, err := PackageModel(src, filepath.Join(t.TempDir(), "model.tar.gz"), PackageOptions{})
	require.Error(t, err)
	assert.ErrorContains(t, err, "did not finish")

	require.NoError(t, exportset.Finish(src, []string{"model.safetensors", "model.pt", "config.json", "tokenizer.json",
		"tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
		"config_sentence_transformers.json", "1_Pooling/config.json"}))
	_, err = PackageModel(src, filepath.Join(t.TempDir(), "model.tar.gz"), PackageOptions{})
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(src, "model.pt"), []byte("another model's TorchScript"), 0o644))
	_, err = PackageModel(src, filepath.Join(t.TempDir(), "model.tar.gz"), PackageOptions{})
	require.ErrorIs(t, err, exportset.ErrIncomplete)
	assert.ErrorContains(t, err, "model.pt was changed after the export")
}

// A packaging run killed mid-write leaves .model.tar.gz.tmp-* (up to the
// archive's size) beside the destination; the next run removes it.
func TestPackageRemovesStaleTemporaryArchives(t *testing.T) {
	src := fakeOutputFolder(t)
	out := t.TempDir()
	stale := filepath.Join(out, ".model.tar.gz.tmp-42")
	require.NoError(t, os.WriteFile(stale, make([]byte, 4096), 0o644))
	_, err := PackageModel(src, filepath.Join(out, "model.tar.gz"), PackageOptions{})
	require.NoError(t, err)
	assert.NoFileExists(t, stale)
}
