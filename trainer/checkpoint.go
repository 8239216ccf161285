package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/embtune/embtune/atomicfile"
)

// A checkpoint is a folder checkpoint-NNNNNNNN holding
//
//	model.safetensors  the encoder weights (Hugging Face names)
//	optimizer.pt       AdamW state (moments and step counts)
//	rng.bin            libtorch's CPU generator state (dropout)
//	rng-cuda.bin       the CUDA generator state, in checkpoints of CUDA runs
//	best-model.safetensors  the best weights on the validation split so far,
//	                   when they are neither the base's nor this step's
//	state.json         step, data position, hyperparameters, loss history
//
// It is written in a temporary folder and renamed into place, so a folder
// with that name is always complete: a run killed mid-write leaves only a
// temporary folder, which the next save removes.

const checkpointPrefix = "checkpoint-"

// checkpointState is state.json.
type checkpointState struct {
	Step int `json:"step"`
	// Epoch and Batch locate the next batch to run.
	Epoch    int             `json:"epoch"`
	Batch    int             `json:"batch"`
	Hyper    HyperParameters `json:"hyperparameters"`
	DataHash string          `json:"data_hash"`
	History  []StepLog       `json:"history"`
	// WorldSize is the number of data-parallel ranks that wrote it (0: one).
	WorldSize int `json:"world_size,omitempty"`
	// Evaluations are the validation scores so far; the best weights are
	// best-model.safetensors when they are neither the base's nor this step's.
	Evaluations []Evaluation `json:"evaluations,omitempty"`
}

func checkpointName(step int) string { return fmt.Sprintf("%s%08d", checkpointPrefix, step) }

// latestCheckpoint returns the newest complete checkpoint folder in dir, or
// "" when there is none.
func latestCheckpoint(dir string) (string, error) {
	paths, err := completeCheckpoints(dir)
	if len(paths) == 0 {
		return "", err
	}
	return paths[0], nil
}

// completeCheckpoints returns the checkpoint folders in dir that have a
// state.json, newest first.
func completeCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), checkpointPrefix) {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "state.json")); err == nil {
				paths = append(paths, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	return paths, nil
}

// errCheckpointMismatch marks a checkpoint of another run (other data or
// hyperparameters): resuming falls back past torn checkpoints, not past these.
var errCheckpointMismatch = errors.New("checkpoint of another run")

// syncPath fsyncs a file or folder; tests replace it to see what is synced.
var syncPath = func(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncTree fsyncs every file under dir, then dir's folders, so that the
// rename that publishes dir never points at data still in the page cache
// (libtorch's save and os.WriteFile do not sync).
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			dirs = append(dirs, path)
			return nil
		case d.Type().IsRegular():
			return syncPath(path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncPath(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeCheckpoint assembles a checkpoint in a temporary folder via fill,
// renames it into place and keeps only the newest keep checkpoints.
func writeCheckpoint(dir string, state checkpointState, keep int, fill func(tmp string) error) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	removeStaleTemps(dir)
	tmp, err := os.MkdirTemp(dir, ".tmp-"+checkpointPrefix)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := fill(tmp); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	b, err := json.MarshalIndent(state, "", " ")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	// state.json marks the folder complete, so it is written last.
	if err := atomicfile.Write(filepath.Join(tmp, "state.json"), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncTree(tmp); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	final := filepath.Join(dir, checkpointName(state.Step))
	if err := os.RemoveAll(final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	ok = true
	pruneCheckpoints(dir, keep)
	return final, nil
}

func removeStaleTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-"+checkpointPrefix) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// RemoveCheckpoints deletes the checkpoint folders in dir and the
// temporary folders of unfinished ones, then dir itself when nothing else
// is left in it; other files stay. It is for after a run that succeeded:
// a checkpoint is what a resume continues from. It returns how many
// checkpoints it removed.
func RemoveCheckpoints(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("removing checkpoints: %w", err)
	}
	removed, others := 0, 0
	for _, e := range entries {
		name := e.Name()
		isCheckpoint := e.IsDir() && strings.HasPrefix(name, checkpointPrefix)
		if !isCheckpoint && !strings.HasPrefix(name, ".tmp-"+checkpointPrefix) {
			others++
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return removed, fmt.Errorf("removing checkpoints: %w", err)
		}
		if isCheckpoint {
			removed++
		}
	}
	if others == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("removing checkpoints: %w", err)
		}
	}
	return removed, nil
}

func pruneCheckpoints(dir string, keep int) {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), checkpointPrefix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for len(names) > keep {
		os.RemoveAll(filepath.Join(dir, names[0]))
		names = names[1:]
	}
}

func readCheckpointState(path string) (checkpointState, error) {
	var st checkpointState
	b, err := os.ReadFile(filepath.Join(path, "state.json"))
	if err != nil {
		return st, fmt.Errorf("resume: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("resume: %s: %w", path, err)
	}
	return st, nil
}
