package hf

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMissingFolderSaysLocalOnly(t *testing.T) {
	_, err := ReadFolder("sentence-transformers/all-MiniLM-L6-v2-nosuch")
	require.Error(t, err)
	require.True(t, errors.Is(err, fs.ErrNotExist))
	require.Contains(t, err.Error(), "no such file")
	require.Contains(t, err.Error(), "downloads nothing")
	require.Contains(t, err.Error(), "Hub id")

	_, err = ReadFolder(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "downloads nothing")
	require.NotContains(t, err.Error(), "Hub id")
}
