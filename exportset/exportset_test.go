package exportset

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func TestVerify(t *testing.T) {
	t.Run("no record: taken as it is", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "model.safetensors", "w")
		assert.NoError(t, Verify(dir))
	})
	t.Run("complete export", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Begin(dir))
		write(t, dir, "model.safetensors", "w")
		write(t, dir, "1_Pooling/config.json", "{}")
		require.NoError(t, Finish(dir, []string{"model.safetensors", "1_Pooling/config.json"}))
		assert.NoError(t, Verify(dir))
	})
	t.Run("interrupted export", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "model.safetensors", "old")
		require.NoError(t, Begin(dir))
		write(t, dir, "model.safetensors", "new")
		err := Verify(dir)
		require.ErrorIs(t, err, ErrIncomplete)
		assert.ErrorContains(t, err, "did not finish")
	})
	t.Run("file changed after the export", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Begin(dir))
		write(t, dir, "model.safetensors", "w")
		require.NoError(t, Finish(dir, []string{"model.safetensors"}))
		write(t, dir, "model.safetensors", "x")
		err := Verify(dir)
		require.ErrorIs(t, err, ErrIncomplete)
		assert.ErrorContains(t, err, "model.safetensors was changed")
	})
	t.Run("listed file missing", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Begin(dir))
		write(t, dir, "model.safetensors", "w")
		require.NoError(t, Finish(dir, []string{"model.safetensors"}))
		require.NoError(t, os.Remove(filepath.Join(dir, "model.safetensors")))
		assert.ErrorIs(t, Verify(dir), ErrIncomplete)
	})
	t.Run("member the record does not list", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Begin(dir))
		write(t, dir, "model.safetensors", "w")
		require.NoError(t, Finish(dir, []string{"model.safetensors"}))
		write(t, dir, "model.pt", "another model")
		err := Verify(dir)
		require.ErrorIs(t, err, ErrIncomplete)
		assert.ErrorContains(t, err, "model.pt is not part of the export")
	})
	t.Run("malformed record", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, RecordName, "{")
		assert.ErrorIs(t, Verify(dir), ErrIncomplete)
	})
}

func TestFinishRemovesStaleMembers(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "model.pt", "older model")
	write(t, dir, "README.md", "not a member")
	require.NoError(t, Begin(dir))
	write(t, dir, "model.safetensors", "w")
	require.NoError(t, Finish(dir, []string{"model.safetensors"}))
	assert.NoFileExists(t, filepath.Join(dir, "model.pt"))
	assert.FileExists(t, filepath.Join(dir, "README.md"))
	assert.NoError(t, Verify(dir))
}
