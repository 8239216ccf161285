package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteReplacesWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.bin")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	require.NoError(t, Write(p, func(w io.Writer) error {
		_, err := w.Write([]byte("new content"))
		return err
	}))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "new content", string(b))
}

func TestFailedWriteKeepsOldFileAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.bin")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	err := Write(p, func(w io.Writer) error {
		w.Write([]byte("half")) //nolint:errcheck
		return errors.New("disk on fire")
	})
	require.ErrorContains(t, err, "disk on fire")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "old", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temporary file is removed")
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	stale := filepath.Join(dir, ".model.safetensors.tmp-123456")
	other := filepath.Join(dir, ".other.tmp-1")
	for _, p := range []string{stale, other, path} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
	removed, err := RemoveStale(path)
	require.NoError(t, err)
	assert.Equal(t, []string{stale}, removed)
	assert.NoFileExists(t, stale)
	assert.FileExists(t, other)
	assert.FileExists(t, path)
}
