// Package exportset writes and checks the completion record of a model
// folder, so that a folder is used only as the whole set one export wrote.
package exportset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/embtune/embtune/atomicfile"
)

// An export is a set of files (weights, TorchScript, configs, tokenizer)
// written one by one into a folder that may already hold an older model. So
// that a crash half way cannot leave a folder whose files come from two
// models, the writer (minilm's SaveFolder) brackets the writes with a record, embtune-export.json:
//
//  1. the record is replaced by one that says "complete": false;
//  2. the files are written (each atomically) and stale set members removed;
//  3. the record is replaced by the complete one: every file's size and sha256.
//
// Verify, which minilm.Load and sagemaker.PackageModel call, refuses a folder
// whose record is incomplete, whose files do not match it, or that holds a
// model file the record does not list. A folder without a record (one from
// the Hugging Face Hub, or written by another tool) is taken as it is.

// RecordName is the completion record's file name inside a model folder.
const RecordName = "embtune-export.json"

const exportRecordFormat = "embtune-export/1"

// ErrIncomplete marks a folder whose export did not finish or whose
// files are not the set the export wrote.
var ErrIncomplete = errors.New("incomplete or mixed model folder")

// Record is embtune-export.json.
type Record struct {
	Format   string `json:"format"`
	Complete bool   `json:"complete"`
	Files    []File `json:"files,omitempty"`
}

// File is one file of an export.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Members are the files that decide what vectors a folder gives (weights,
// TorchScript, configuration, tokenizer): each one present in a folder with a
// complete record must be listed by it.
var Members = []string{
	"model.safetensors", "model.pt", "config.json", "modules.json", "sentence_bert_config.json",
	"config_sentence_transformers.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "vocab.txt", "1_Pooling/config.json",
}

func writeRecord(dir string, rec Record) error {
	rec.Format = exportRecordFormat
	b, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, RecordName), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// Begin marks dir as being written; call it before any file of the set is touched.
func Begin(dir string) error {
	if err := writeRecord(dir, Record{Complete: false}); err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	return nil
}

// Finish removes members of an older export that this one did not write,
// then records the files written (slash paths relative to dir) as complete.
func Finish(dir string, written []string) error {
	keep := map[string]bool{}
	for _, w := range written {
		keep[w] = true
	}
	for _, n := range Members {
		if !keep[n] {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("export %s: removing the older %s: %w", dir, n, err)
			}
		}
	}
	rec := Record{Complete: true}
	sort.Strings(written)
	for _, rel := range written {
		f, err := hashFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
		f.Path = rel
		rec.Files = append(rec.Files, f)
	}
	if err := writeRecord(dir, rec); err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	return nil
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify checks a model folder against its record (see the top of this
// file). It returns nil for a folder without one.
func Verify(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, RecordName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("model folder %s: %w", dir, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("model folder %s: %w: %s", dir, ErrIncomplete, fmt.Sprintf(format, args...))
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Format != exportRecordFormat {
		return bad("%s is not an export record (%v); export the model again", RecordName, err)
	}
	if !rec.Complete {
		return bad("the export that wrote it did not finish (killed?), so its files may come from two models; export or train into it again")
	}
	listed := map[string]bool{}
	for _, f := range rec.Files {
		listed[f.Path] = true
		got, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			return bad("%s is listed in %s but missing", f.Path, RecordName)
		case err != nil:
			return fmt.Errorf("model folder %s: %w", dir, err)
		case got.Size != f.Size || got.SHA256 != f.SHA256:
			return bad("%s was changed after the export (%d bytes, sha256 %.12s; the export wrote %d bytes, %.12s)",
				f.Path, got.Size, got.SHA256, f.Size, f.SHA256)
		}
	}
	for _, n := range Members {
		if listed[n] {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(n))); err == nil {
			return bad("%s is not part of the export recorded in %s (left from another model?)", n, RecordName)
		}
	}
	return nil
}
