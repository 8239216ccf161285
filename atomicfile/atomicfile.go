// Package atomicfile writes files so that readers see either the old file or
// the whole new one, never a torn write: models, checkpoints and archives go
// through a temporary file in the same folder, fsync, then rename.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write streams the new content of path through write.
func Write(path string, write func(io.Writer) error) error {
	return WriteVia(path, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// WriteVia lets a writer that insists on a file name (libtorch's save) write
// a temporary path, which is then synced and renamed to path. On error the
// temporary file is removed and path is untouched.
func WriteVia(path string, write func(tmp string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() //nolint:errcheck // best effort: the rename is already visible
		d.Close()
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// RemoveStale removes the temporary files that writes of path left behind
// when their process was killed (".NAME.tmp-*" beside it; up to a model's
// size each). Call it when a command starts writing path again; two
// processes writing one path at once are not supported anyway.
func RemoveStale(path string) ([]string, error) {
	pattern := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("remove stale temporary files of %s: %w", path, err)
	}
	var removed []string
	for _, m := range matches {
		if st, err := os.Lstat(m); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(m); err != nil && !os.IsNotExist(err) {
			return removed, fmt.Errorf("remove stale temporary file: %w", err)
		}
		removed = append(removed, m)
	}
	return removed, nil
}
