package corpus

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/vecmath"
)

// ChunksPerFile is how many chunks WriteChunks puts in one file: SageMaker
// Batch Transform shares files, not lines, among its instances
// (ShardedByS3Key), so a corpus in many files spreads over many instances.
const ChunksPerFile = 10000

// WriteChunks writes chunks as JSON Lines files chunks-00000.jsonl, … in
// dir, perFile chunks each (0: ChunksPerFile), for SageMaker Batch
// Transform: the embtune server reads each line's "text" and ignores the
// rest, and ReadTransformOutput pairs the lines with the output again.
// It returns the files written.
func WriteChunks(dir string, chunks []Chunk, perFile int) ([]string, error) {
	if perFile <= 0 {
		perFile = ChunksPerFile
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for part, start := 0, 0; start < len(chunks); part, start = part+1, start+perFile {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, c := range chunks[start:min(start+perFile, len(chunks))] {
			if err := enc.Encode(c); err != nil {
				return nil, err
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("chunks-%05d.jsonl", part))
		if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err }); err != nil {
			return nil, fmt.Errorf("write chunks: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}

// TransformOutputSuffix is what Batch Transform appends to an input
// object's name for its output object.
const TransformOutputSuffix = ".out"

// ReadTransformOutput pairs the Batch Transform input files under inputDir
// (JSON Lines: chunks as WriteChunks writes them, {"text": …} objects or
// bare strings) with their output files under outputDir (the same relative
// name plus ".out", one embedding per line as a JSON array, as the embtune
// server answers application/jsonlines with AssembleWith=Line). Chunks
// without an id are named FILE#LINE. Vectors are L2-normalised. Files are
// read in name order; a missing output file, a different number of lines,
// mixed dimensions or a non-finite value is an error naming the file and
// line.
func ReadTransformOutput(inputDir, outputDir string) ([]Chunk, [][]float32, error) {
	var inputs []string
	err := filepath.WalkDir(inputDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, err := filepath.Rel(inputDir, path)
			if err != nil {
				return err
			}
			inputs = append(inputs, rel)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("transform input: %w", err)
	}
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("transform input: no files in %s", inputDir)
	}
	sort.Strings(inputs)
	var chunks []Chunk
	var vecs [][]float32
	dim := 0
	for _, rel := range inputs {
		in, err := readLines(filepath.Join(inputDir, rel))
		if err != nil {
			return nil, nil, err
		}
		outPath := filepath.Join(outputDir, rel+TransformOutputSuffix)
		out, err := readLines(outPath)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("transform output: no %s for the input %s: did the job finish?", outPath, rel)
		}
		if err != nil {
			return nil, nil, err
		}
		if len(in) != len(out) {
			return nil, nil, fmt.Errorf("transform output: %s has %d lines, its input %s %d", outPath, len(out), rel, len(in))
		}
		for i, line := range in {
			c, err := parseChunkLine(line)
			if err != nil {
				return nil, nil, fmt.Errorf("transform input %s line %d: %w", rel, i+1, err)
			}
			if c.ID == "" {
				c.ID = fmt.Sprintf("%s#%d", filepath.ToSlash(rel), i)
				c.Doc = filepath.ToSlash(rel)
			}
			if c.End == 0 && c.Start == 0 {
				c.End = len(c.Text)
			}
			var v []float32
			if err := json.Unmarshal(out[i], &v); err != nil {
				return nil, nil, fmt.Errorf("transform output %s line %d: want a JSON array of numbers: %w", outPath, i+1, err)
			}
			if dim == 0 {
				dim = len(v)
			}
			if len(v) != dim || dim == 0 {
				return nil, nil, fmt.Errorf("transform output %s line %d: %d values, earlier lines %d", outPath, i+1, len(v), dim)
			}
			for _, x := range v {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return nil, nil, fmt.Errorf("transform output %s line %d: not finite", outPath, i+1)
				}
			}
			chunks = append(chunks, c)
			vecs = append(vecs, vecmath.Normalized(v))
		}
	}
	return chunks, vecs, nil
}

func parseChunkLine(line []byte) (Chunk, error) {
	var c Chunk
	switch {
	case len(line) > 0 && line[0] == '"':
		err := json.Unmarshal(line, &c.Text)
		return c, err
	case len(line) > 0 && line[0] == '{':
		var raw struct {
			Chunk
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return c, err
		}
		if raw.Text == nil {
			return c, errors.New(`no "text"`)
		}
		c = raw.Chunk
		c.Text = *raw.Text
		if c.Start < 0 || c.End < c.Start {
			return c, fmt.Errorf("offsets [%d, %d)", c.Start, c.End)
		}
		return c, nil
	}
	return c, errors.New(`want a JSON string or {"text": …}`)
}

// readLines returns a file's non-empty lines, trimmed.
func readLines(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
