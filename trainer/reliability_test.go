package trainer

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A crash can leave a renamed checkpoint folder whose files never reached
// the disk; --resume then falls back to the previous complete checkpoint
// and says which one it uses.
func TestResumeFallsBackPastTornCheckpoint(t *testing.T) {
	ctx := context.Background()
	pairs := smallPairs(8)
	hp := DefaultHyperParameters()
	hp.Epochs, hp.BatchSize, hp.MaxSeqLength = 1, 4, 32
	hp.ValidationSplit = 0
	dir := t.TempDir()
	opts := Options{CheckpointDir: dir, CheckpointEvery: 1, MinCheckpointInterval: -1}
	_, err := Train(ctx, loadModel(t, hp.MaxSeqLength), pairs, hp, opts)
	require.NoError(t, err)
	newest, older := filepath.Join(dir, checkpointName(2)), filepath.Join(dir, checkpointName(1))
	require.DirExists(t, newest)
	require.DirExists(t, older)
	require.NoError(t, os.Truncate(filepath.Join(newest, "optimizer.pt"), 100))

	var logs bytes.Buffer
	opts.Resume = true
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	res, err := Train(ctx, loadModel(t, hp.MaxSeqLength), pairs, hp, opts)
	require.NoError(t, err)
	assert.Equal(t, older, res.ResumedFrom)
	assert.Equal(t, 2, res.Steps)
	assert.Contains(t, logs.String(), "checkpoint is unreadable")
	assert.Contains(t, logs.String(), "resumed from an older checkpoint")

	// Every checkpoint torn: an error, not a silent fresh start.
	for _, c := range []string{newest, older} {
		require.NoError(t, os.Truncate(filepath.Join(c, "model.safetensors"), 100))
	}
	_, err = Train(ctx, loadModel(t, hp.MaxSeqLength), pairs, hp, opts)
	assert.ErrorContains(t, err, "no checkpoint in")
}

// optimizer.pt and rng.bin (written by libtorch and os.WriteFile, neither of
// which syncs) reach the disk before the checkpoint folder is renamed.
func TestCheckpointFilesAreSyncedBeforeRename(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	orig := syncPath
	syncPath = func(path string) error {
		if _, err := os.Stat(filepath.Join(dir, checkpointName(3))); err == nil {
			t.Errorf("%s synced after the rename", path)
		}
		synced = append(synced, filepath.Base(path))
		return orig(path)
	}
	defer func() { syncPath = orig }()
	_, err := writeCheckpoint(dir, checkpointState{Step: 3}, 2, func(tmp string) error {
		for _, name := range []string{"model.safetensors", "optimizer.pt", "rng.bin"} {
			if err := os.WriteFile(filepath.Join(tmp, name), []byte(name), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.Subset(t, synced, []string{"optimizer.pt", "rng.bin", "model.safetensors"})
}

// TestRemoveCheckpoints: the checkpoint folders and unfinished temporary
// ones go; anything else in the folder stays, and so does the folder then.
func TestRemoveCheckpoints(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{checkpointName(3), checkpointName(6), ".tmp-" + checkpointName(9)} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, "state.json"), []byte("{}"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	n, err := RemoveCheckpoints(dir)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 1)
	assert.Equal(t, "notes.txt", left[0].Name())

	only := filepath.Join(t.TempDir(), "checkpoints")
	require.NoError(t, os.MkdirAll(filepath.Join(only, checkpointName(1)), 0o755))
	n, err = RemoveCheckpoints(only)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoDirExists(t, only, "an emptied checkpoint folder goes too")

	n, err = RemoveCheckpoints(filepath.Join(t.TempDir(), "none"))
	require.NoError(t, err)
	assert.Zero(t, n)
}
