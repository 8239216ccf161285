package corpus

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/embtune/embtune/hf"
)

// Document is one text to index.
type Document struct {
	// ID names the document in search results: its path relative to the
	// folder given, the file name of a file given, or a JSONL record's "id"
	// (FILE:LINE without one). A .gz suffix is dropped.
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Text  string `json:"text"`
}

// textExts are read as one document per file.
var textExts = map[string]bool{".txt": true, ".text": true, ".md": true, ".markdown": true, ".rst": true}

// maxDocumentBytes bounds one file or record, so a stray disk image fails
// with a clear error instead of exhausting memory.
const maxDocumentBytes = 64 << 20

// ReadDocuments reads documents from files and folders. Folders are walked in
// name order, skipping hidden entries and files of other types; given files
// must have a known type. Plain text (.txt, .text), Markdown (.md,
// .markdown) and reStructuredText (.rst) files are one document each. JSONL
// (.jsonl) holds one document per line: {"text": …} with optional "id" and
// "title"; lines without an id get NAME:LINE, NAME being the file's id. Any
// of these may be gzipped (.gz). Empty files are skipped and counted; an
// empty JSONL text, invalid UTF-8 and duplicate ids are errors that name the
// file and line.
func ReadDocuments(paths []string) (docs []Document, skipped int, err error) {
	if len(paths) == 0 {
		return nil, 0, errors.New("no documents given")
	}
	seen := map[string]string{}
	add := func(d Document, where string) error {
		if prev, ok := seen[d.ID]; ok {
			return fmt.Errorf("%s: document id %q already used by %s", where, d.ID, prev)
		}
		seen[d.ID] = where
		docs = append(docs, d)
		return nil
	}
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			return nil, 0, fmt.Errorf("documents: %w", err)
		}
		if !st.IsDir() {
			if _, ok := kind(root); !ok {
				return nil, 0, fmt.Errorf("%s: unsupported document type (want .txt, .md, .rst or .jsonl, optionally .gz)", root)
			}
			n, err := readFile(root, filepath.Base(root), add)
			if err != nil {
				return nil, 0, err
			}
			skipped += n
			continue
		}
		// A folder given as a symbolic link is walked; links inside it are
		// followed to files but not to folders, which could loop.
		if resolved, err := filepath.EvalSymlinks(root); err == nil {
			root = resolved
		}
		var files []string
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != root && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if _, ok := kind(path); !ok {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			files = append(files, path)
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("documents: %w", err)
		}
		sort.Strings(files)
		for _, f := range files {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				rel = f
			}
			n, err := readFile(f, filepath.ToSlash(rel), add)
			if err != nil {
				return nil, 0, err
			}
			skipped += n
		}
	}
	if len(docs) == 0 {
		return nil, skipped, fmt.Errorf("no documents with text in %s", strings.Join(paths, ", "))
	}
	return docs, skipped, nil
}

// kind returns a path's document type, ".jsonl" or a text extension, looking
// through a .gz suffix.
func kind(path string) (string, bool) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext == ".gz" {
		ext = strings.ToLower(filepath.Ext(strings.TrimSuffix(path, filepath.Ext(path))))
	}
	return ext, ext == ".jsonl" || textExts[ext]
}

// readFile adds the documents of one file; id is the name a text file's
// document gets. It returns 1 when the file was empty and skipped.
func readFile(path, id string, add func(Document, string) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("documents: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.EqualFold(filepath.Ext(path), ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
		id = strings.TrimSuffix(id, filepath.Ext(id))
	}
	ext, _ := kind(path)
	if ext == ".jsonl" {
		n, err := readJSONL(path, id, r, add)
		if err == nil && n == 0 {
			return 1, nil
		}
		return 0, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxDocumentBytes+1))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxDocumentBytes {
		return 0, fmt.Errorf("%s: larger than %d MiB; split it first", path, maxDocumentBytes>>20)
	}
	if !utf8.Valid(data) {
		return 0, fmt.Errorf("%s: not valid UTF-8 (first bad byte at offset %d)", path, hf.InvalidUTF8Offset(string(data)))
	}
	text := strings.TrimPrefix(string(data), "\ufeff")
	if strings.TrimSpace(text) == "" {
		return 1, nil
	}
	return 0, add(Document{ID: id, Text: text}, path)
}

// readJSONL adds one document per line and returns how many; name (the
// file's id) and the line number name records without an "id".
func readJSONL(path, name string, r io.Reader, add func(Document, string) error) (int, error) {
	docs := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxDocumentBytes)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
		}
		if len(raw) == 0 {
			continue
		}
		where := path + ":" + strconv.Itoa(line)
		if !utf8.Valid(raw) {
			return docs, fmt.Errorf("%s: not valid UTF-8", where)
		}
		var rec struct {
			ID    json.RawMessage `json:"id"`
			Title *string         `json:"title"`
			Text  *string         `json:"text"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return docs, fmt.Errorf("%s: %w", where, err)
		}
		if rec.Text == nil {
			return docs, fmt.Errorf(`%s: no "text" field`, where)
		}
		if strings.TrimSpace(*rec.Text) == "" {
			return docs, fmt.Errorf(`%s: "text" is empty`, where)
		}
		d := Document{ID: name + ":" + strconv.Itoa(line), Text: *rec.Text}
		if rec.Title != nil {
			d.Title = *rec.Title
		}
		if len(rec.ID) > 0 && string(rec.ID) != "null" {
			var s string
			if err := json.Unmarshal(rec.ID, &s); err == nil {
				d.ID = s
			} else if _, err := strconv.ParseFloat(string(rec.ID), 64); err == nil {
				d.ID = string(rec.ID)
			} else {
				return docs, fmt.Errorf(`%s: "id" must be a string or a number`, where)
			}
			if d.ID == "" {
				return docs, fmt.Errorf(`%s: "id" is empty`, where)
			}
		}
		if err := add(d, where); err != nil {
			return docs, err
		}
		docs++
	}
	if err := sc.Err(); err != nil {
		return docs, fmt.Errorf("%s: line %d: %w", path, line+1, err)
	}
	return docs, nil
}
