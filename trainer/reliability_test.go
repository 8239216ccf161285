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
