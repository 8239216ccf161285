package sagemaker

// The model archive (model.tar.gz).
//
// PackageModel turns the output folder of `embtune train` into the archive
// that SageMaker hosting downloads from S3 and unpacks into /opt/ml/model.
// Its root holds:
//
//	model.pt                        TorchScript: (input_ids, attention_mask) -> normalised embeddings
//	config.json, model.safetensors  the Hugging Face / sentence-transformers folder:
//	tokenizer.json, vocab.txt, …    tokenizer files, modules.json, sentence_bert_config.json,
//	1_Pooling/config.json, …        config_sentence_transformers.json, 1_Pooling/ (2_Normalize/ if present)
//	code/inference.py               handler for the AWS inference toolkits
//	code/requirements.txt           tokenizers, installed by the container at start-up
//	embtune-manifest.json           every other file with its size and sha256; written last
//
// The same tarball serves three kinds of container:
//
//   - The AWS PyTorch inference container (sagemaker-pytorch-inference
//     toolkit) imports /opt/ml/model/code/inference.py (SAGEMAKER_PROGRAM
//     defaults to inference.py) after pip-installing code/requirements.txt,
//     and calls model_fn (torch.jit.load of model.pt plus the tokenizer via
//     `tokenizers`), input_fn ({"inputs": str | [str]}), predict_fn and
//     output_fn ({"embeddings": [[...]]}, every vector L2-normalised). The
//     pip install needs network access from the endpoint (or a VPC with a
//     PyPI mirror); under network isolation bake tokenizers into the image.
//   - The Hugging Face inference container (sagemaker-huggingface-inference
//     toolkit) finds the sentence-transformers files at the root. It also
//     imports code/inference.py when present and lets its model_fn,
//     input_fn, predict_fn and output_fn replace its own pipeline, so the
//     request and response are the same as above, and HF_TASK is not
//     needed. Only an archive without code/ (PackageOptions.NoCode) runs the
//     container's own transformers pipeline, selected with
//     HF_TASK=feature-extraction; that pipeline answers with one vector per
//     token ([[[...]]]), which the caller must mean-pool and normalise
//     (Invoke refuses that shape).
//   - Text Embeddings Inference (the huggingface-tei image) is pointed at
//     /opt/ml/model (HF_MODEL_ID=/opt/ml/model) and reads config.json,
//     tokenizer.json, model.safetensors, 1_Pooling/config.json and
//     modules.json at the root; it ignores model.pt and code/. Its
//     SageMaker route answers {"inputs": [...]} with a bare array of arrays,
//     which Invoke accepts too.
//
// ExtractModel is the safe inverse, for containers that are handed the
// tarball itself.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/embtune/embtune/atomicfile"
	"github.com/embtune/embtune/exportset"
)

// ManifestName is the manifest's path inside the archive.
const ManifestName = "embtune-manifest.json"

// ManifestFormat names the archive layout this package writes.
const ManifestFormat = "embtune-model-archive/1"

// ManifestFile is one archived file.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a model archive. It is stored as embtune-manifest.json,
// the archive's last entry, and lists every other file.
type Manifest struct {
	Format         string         `json:"format"`
	Model          string         `json:"model"`
	Dim            int            `json:"dim"`
	MaxSeqLength   int            `json:"max_seq_length"`
	EmbtuneVersion string         `json:"embtune_version"`
	Created        time.Time      `json:"created"`
	Files          []ManifestFile `json:"files"`
}

// PackageOptions tunes PackageModel. The zero value is fine.
type PackageOptions struct {
	// ModelName is recorded in the manifest (default: the folder's name).
	ModelName string
	// Version is the embtune version recorded (default: from the build info).
	Version string
	// Created is the manifest's time and every entry's mtime (default: now).
	// With a fixed Created the archive's bytes depend on the files only.
	Created time.Time
	// Fast compresses with gzip.BestSpeed instead of the default level.
	// Weights compress by only a few percent either way.
	Fast bool
	// NoCode leaves code/inference.py and code/requirements.txt out, for the
	// Hugging Face container's own pipeline.
	NoCode bool
}

// requiredFiles must be at the root of a trained output folder.
var requiredFiles = []string{"model.pt", "config.json", "model.safetensors", "tokenizer.json"}

// inferenceScript is code/inference.py (see the top of this file).
var inferenceScript = []byte(inferencePy)

// inferenceRequirements is code/requirements.txt; the PyTorch and Hugging
// Face containers already ship torch.
const inferenceRequirements = "tokenizers>=0.15,<1\n"

// excludedFromArchive reports whether a root-relative slash path of the
// output folder stays out of the archive: training by-products, anything
// hidden (atomicfile's temporary files), tarballs, and the files
// PackageModel generates itself.
func excludedFromArchive(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	top, _, nested := strings.Cut(rel, "/")
	switch top {
	case "checkpoints", "split", "folds", "code", "eval.json", ManifestName:
		return true
	}
	if nested {
		return false
	}
	return strings.HasPrefix(top, "loss.") || strings.HasSuffix(top, ".tar.gz") || strings.HasSuffix(top, ".tgz")
}

// archiveEntry is a file to archive, from disk (src) or generated (data),
// or a directory (dir), so that empty ones such as 2_Normalize/ survive.
type archiveEntry struct {
	rel  string
	src  string
	size int64
	data []byte
	dir  bool
}

// beforeArchiveEntry lets tests fail a packaging run half way.
var beforeArchiveEntry = func(rel string) error { return nil }

// PackageModel writes dest, a gzip-compressed tar of the trained output
// folder srcDir laid out for SageMaker hosting (see the comment at the top
// of this file), and returns its manifest. Entries are sorted by path, owned
// by root and stamped with opts.Created. Only regular files are archived; a
// symbolic link is archived as the file it points to if that file is inside
// srcDir, and refused otherwise. dest is replaced atomically: on error it is
// left as it was and no temporary file remains.
func PackageModel(srcDir, dest string, opts PackageOptions) (Manifest, error) {
	man := Manifest{Format: ManifestFormat, Model: opts.ModelName, EmbtuneVersion: opts.Version, Created: opts.Created}
	root, err := filepath.Abs(srcDir)
	if err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	if st, err := os.Stat(root); err != nil {
		return man, fmt.Errorf("package: model folder: %w", err)
	} else if !st.IsDir() {
		return man, fmt.Errorf("package: %s is not a folder", srcDir)
	}
	// A folder whose export did not finish, or that mixes two models' files,
	// would make the containers that read model.pt and those that read
	// model.safetensors serve different vectors.
	if err := exportset.Verify(root); err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	destAbs, err := filepath.Abs(dest)
	if err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	// What a killed earlier packaging left (up to the archive's size).
	if _, err := atomicfile.RemoveStale(destAbs); err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	entries, err := collectEntries(root, destAbs)
	if err != nil {
		return man, fmt.Errorf("package %s: %w", srcDir, err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.rel] = !e.dir
	}
	var missing []string
	for _, name := range requiredFiles {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return man, fmt.Errorf("package %s: not a trained embtune output folder: missing %s "+
			"(`embtune train` writes all of them; `embtune export --torchscript` writes model.pt)",
			srcDir, strings.Join(missing, ", "))
	}
	if man.Dim, man.MaxSeqLength, err = modelShape(root); err != nil {
		return man, fmt.Errorf("package %s: %w", srcDir, err)
	}
	if man.Model == "" {
		man.Model = filepath.Base(root)
	}
	if man.EmbtuneVersion == "" {
		man.EmbtuneVersion = embtuneVersion()
	}
	if man.Created.IsZero() {
		man.Created = time.Now()
	}
	man.Created = man.Created.UTC().Truncate(time.Second)
	if !opts.NoCode {
		entries = append(entries,
			archiveEntry{rel: "code/inference.py", data: inferenceScript, size: int64(len(inferenceScript))},
			archiveEntry{rel: "code/requirements.txt", data: []byte(inferenceRequirements), size: int64(len(inferenceRequirements))})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })

	level := gzip.DefaultCompression
	if opts.Fast {
		level = gzip.BestSpeed
	}
	if err := os.MkdirAll(filepath.Dir(destAbs), 0o755); err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	err = atomicfile.Write(destAbs, func(w io.Writer) error {
		man.Files = man.Files[:0]
		gz, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(gz)
		dirs := map[string]bool{}
		for _, e := range entries {
			if err := beforeArchiveEntry(e.rel); err != nil {
				return err
			}
			if e.dir {
				if err := writeDirs(tw, e.rel, man.Created, dirs); err != nil {
					return err
				}
				continue
			}
			if err := writeDirs(tw, path.Dir(e.rel), man.Created, dirs); err != nil {
				return err
			}
			f, err := writeEntry(tw, e, man.Created)
			if err != nil {
				return fmt.Errorf("%s: %w", e.rel, err)
			}
			man.Files = append(man.Files, f)
		}
		body, err := json.MarshalIndent(man, "", "  ")
		if err != nil {
			return err
		}
		body = append(body, '\n')
		if _, err := writeEntry(tw, archiveEntry{rel: ManifestName, data: body, size: int64(len(body))}, man.Created); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	})
	if err != nil {
		return man, fmt.Errorf("package: %w", err)
	}
	return man, nil
}

// collectEntries walks root and returns the files to archive.
func collectEntries(root, destAbs string) ([]archiveEntry, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	var out []archiveEntry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if excludedFromArchive(rel) || p == destAbs {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			out = append(out, archiveEntry{rel: rel, dir: true})
			return nil
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, archiveEntry{rel: rel, src: p, size: info.Size()})
			return nil
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s: broken symbolic link: %w", rel, err)
			}
			inside, err := filepath.Rel(realRoot, target)
			if err != nil || !filepath.IsLocal(inside) {
				return fmt.Errorf("%s is a symbolic link to %s, outside the model folder: copy the file in instead", rel, target)
			}
			info, err := os.Stat(target)
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return fmt.Errorf("%s is a symbolic link to a %s; only regular files are archived", rel, fileKind(info.Mode()))
			}
			out = append(out, archiveEntry{rel: rel, src: target, size: info.Size()})
			return nil
		default:
			return fmt.Errorf("%s is a %s; only regular files are archived", rel, fileKind(t))
		}
	})
	return out, err
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// modelShape reads the embedding width and max_seq_length of a
// sentence-transformers folder.
func modelShape(root string) (dim, maxSeq int, err error) {
	var cfg struct {
		HiddenSize            int `json:"hidden_size"`
		MaxPositionEmbeddings int `json:"max_position_embeddings"`
	}
	if err := readJSONFile(filepath.Join(root, "config.json"), &cfg); err != nil {
		return 0, 0, err
	}
	var pooling struct {
		Dim int `json:"word_embedding_dimension"`
	}
	if err := readJSONFile(filepath.Join(root, "1_Pooling", "config.json"), &pooling); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	var st struct {
		MaxSeqLength int `json:"max_seq_length"`
	}
	if err := readJSONFile(filepath.Join(root, "sentence_bert_config.json"), &st); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	dim = pooling.Dim
	if dim == 0 {
		dim = cfg.HiddenSize
	}
	maxSeq = st.MaxSeqLength
	if maxSeq == 0 {
		maxSeq = min(cfg.MaxPositionEmbeddings, 512)
	}
	if dim <= 0 || maxSeq <= 0 {
		return 0, 0, fmt.Errorf("cannot tell the embedding size (%d) or max_seq_length (%d) from config.json, "+
			"1_Pooling/config.json and sentence_bert_config.json", dim, maxSeq)
	}
	return dim, maxSeq, nil
}

func readJSONFile(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: malformed JSON: %w", p, err)
	}
	return nil
}

// embtuneVersion names the running build: the module version and, when the
// build recorded it, the VCS revision.
func embtuneVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "embtune (unknown)"
	}
	v := "embtune " + bi.Main.Version
	if bi.Main.Version == "" {
		v = "embtune (devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + dirty
	}
	return v
}

// writeDirs writes the entries of directory dir and of its parents that
// are not written yet, outermost first.
func writeDirs(tw *tar.Writer, dir string, mtime time.Time, done map[string]bool) error {
	if dir == "." || done[dir] {
		return nil
	}
	if err := writeDirs(tw, path.Dir(dir), mtime, done); err != nil {
		return err
	}
	done[dir] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime})
}

// writeEntry archives one file, hashing exactly the bytes written.
func writeEntry(tw *tar.Writer, e archiveEntry, mtime time.Time) (ManifestFile, error) {
	mf := ManifestFile{Path: e.rel, Size: e.size}
	var r io.Reader = bytes.NewReader(e.data)
	if e.src != "" {
		f, err := os.Open(e.src)
		if err != nil {
			return mf, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return mf, err
		}
		if !st.Mode().IsRegular() || st.Size() != e.size {
			return mf, errors.New("changed while packaging; run again when nothing writes to the folder")
		}
		r = f
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.rel, Size: e.size, Mode: 0o644, ModTime: mtime}
	if err := tw.WriteHeader(hdr); err != nil {
		return mf, err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tw, h), r, e.size); err != nil {
		if errors.Is(err, io.EOF) {
			return mf, errors.New("shrank while packaging; run again when nothing writes to the folder")
		}
		return mf, err
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return mf, errors.New("grew while packaging; run again when nothing writes to the folder")
	}
	mf.SHA256 = hex.EncodeToString(h.Sum(nil))
	return mf, nil
}

// Limits ExtractModel enforces against hostile or corrupt archives.
const (
	maxExtractBytes   = 64 << 30
	maxExtractEntries = 100_000
)

// ExtractModel unpacks the model archive tarPath into destDir, which must be
// empty or absent. Only regular files and directories are accepted: an entry
// with an absolute path, a ".." component, or of any other type (symbolic or
// hard link, device, FIFO) fails the whole extraction, as does a duplicate
// entry. Files are created through an os.Root, so nothing can be written
// outside destDir. If the archive holds embtune-manifest.json, every file is
// checked against its size and sha256, and files missing from either side
// are errors. Archives without a manifest (SageMaker's own output
// model.tar.gz, for instance) are extracted unchecked. On error destDir is
// emptied again.
func ExtractModel(tarPath, destDir string) (err error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	existing, err := os.ReadDir(destDir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if len(existing) > 0 {
		return fmt.Errorf("extract %s: %s is not empty", tarPath, destDir)
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	defer func() {
		if err != nil {
			emptyExtractDir(destDir)
		}
	}()
	if err := extractInto(f, root); err != nil {
		return fmt.Errorf("extract %s: %w", tarPath, err)
	}
	return nil
}

func emptyExtractDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// archiveName validates an entry name and returns it cleaned ("./a/b" is
// "a/b"; "." and "./" are the root, returned as "").
func archiveName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return "", fmt.Errorf("entry %q: invalid name", name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("entry %q: absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: \"..\" in path", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	if !filepath.IsLocal(clean) {
		return "", fmt.Errorf("entry %q: not a local path", name)
	}
	return clean, nil
}

func extractInto(r io.Reader, root *os.Root) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip-compressed tar: %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	got := map[string]ManifestFile{}
	var manifest []byte
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		if n >= maxExtractEntries {
			return fmt.Errorf("more than %d entries", maxExtractEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := archiveName(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name != "" {
				if err := root.MkdirAll(name, 0o755); err != nil {
					return err
				}
			}
			continue
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			return fmt.Errorf("entry %q is a link (to %q); model archives hold only regular files and directories", hdr.Name, hdr.Linkname)
		default:
			return fmt.Errorf("entry %q has type %q; model archives hold only regular files and directories", hdr.Name, hdr.Typeflag)
		}
		if name == "" {
			return fmt.Errorf("entry %q: a file named like the root", hdr.Name)
		}
		if seen[name] {
			return fmt.Errorf("entry %q appears twice", hdr.Name)
		}
		seen[name] = true
		if hdr.Size < 0 || total+hdr.Size > maxExtractBytes {
			return fmt.Errorf("entry %q: archive unpacks to more than %d GiB", hdr.Name, maxExtractBytes>>30)
		}
		total += hdr.Size
		if name == ManifestName {
			if hdr.Size > 16<<20 {
				return fmt.Errorf("%s is %d bytes; that is no manifest", ManifestName, hdr.Size)
			}
			if manifest, err = io.ReadAll(tr); err != nil {
				return fmt.Errorf("reading %s: %w", ManifestName, err)
			}
			if err := writeRootFile(root, name, bytes.NewReader(manifest), nil); err != nil {
				return err
			}
			continue
		}
		h := sha256.New()
		if err := writeRootFile(root, name, tr, h); err != nil {
			return err
		}
		got[name] = ManifestFile{Path: name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	// tar stops at its end marker; read gzip to its end so that its CRC is checked.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("reading archive: %w", err)
	}
	if manifest == nil {
		return nil
	}
	return checkManifest(manifest, got)
}

func writeRootFile(root *os.Root, name string, r io.Reader, h io.Writer) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := io.Writer(f)
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	if _, err := io.Copy(w, r); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// checkManifest compares the extracted files with the manifest.
func checkManifest(raw []byte, got map[string]ManifestFile) error {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: malformed JSON: %w", ManifestName, err)
	}
	var problems []string
	listed := map[string]bool{}
	for _, want := range m.Files {
		listed[want.Path] = true
		have, ok := got[want.Path]
		switch {
		case !ok:
			problems = append(problems, want.Path+" is listed but missing")
		case have.Size != want.Size:
			problems = append(problems, fmt.Sprintf("%s has %d bytes, the manifest says %d", want.Path, have.Size, want.Size))
		case have.SHA256 != want.SHA256:
			problems = append(problems, want.Path+" has the wrong sha256")
		}
	}
	for name := range got {
		if !listed[name] {
			problems = append(problems, name+" is not in the manifest")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("archive does not match %s: %s", ManifestName, strings.Join(problems, "; "))
	}
	return nil
}

// inferencePy is the handler the AWS PyTorch and Hugging Face inference
// toolkits import from /opt/ml/model/code. It must stay free of backquotes.
const inferencePy = `"""SageMaker inference handler for an embtune model archive (model.tar.gz).

Written by embtune's PackageModel. The AWS PyTorch and Hugging Face inference
containers import it from /opt/ml/model/code and call model_fn, input_fn,
predict_fn and output_fn.

Request (application/json):  {"inputs": "a text"} or {"inputs": ["a text", ...]}
Response (application/json): {"embeddings": [[...], ...]}, one L2-normalised
vector per input text, in input order.

Environment: EMBTUNE_BATCH_SIZE (texts per forward pass, default 32) and
EMBTUNE_MAX_INPUTS (texts per request, default 2048).
"""

import json
import os

import torch
from tokenizers import Tokenizer

JSON = "application/json"
BATCH_SIZE = max(1, int(os.environ.get("EMBTUNE_BATCH_SIZE", "32")))
MAX_INPUTS = max(1, int(os.environ.get("EMBTUNE_MAX_INPUTS", "2048")))


def _read_json(model_dir, name):
    path = os.path.join(model_dir, name)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _media_type(value):
    return (value or JSON).split(";")[0].strip().lower()


def model_fn(model_dir):
    """Loads model.pt (TorchScript) and tokenizer.json from the archive root."""
    manifest = _read_json(model_dir, "embtune-manifest.json")
    st_config = _read_json(model_dir, "sentence_bert_config.json")
    max_len = int(manifest.get("max_seq_length") or st_config.get("max_seq_length") or 256)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # tokenizer.json may pad and truncate to a fixed length; sentence-transformers
    # truncates at max_seq_length and pads to the longest text of the batch.
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.jit.load(os.path.join(model_dir, "model.pt"), map_location=device)
    model.eval()
    return {"model": model, "tokenizer": tokenizer, "device": device}


def input_fn(request_body, request_content_type):
    """Accepts {"inputs": str | [str]} (a bare string or list also works)."""
    if _media_type(request_content_type) != JSON:
        raise ValueError("unsupported content type %r: send application/json" % request_content_type)
    if isinstance(request_body, (bytes, bytearray)):
        request_body = bytes(request_body).decode("utf-8")
    data = json.loads(request_body)
    texts = data.get("inputs") if isinstance(data, dict) else data
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError('the body must be {"inputs": "a text"} or {"inputs": ["a text", ...]}')
    if len(texts) > MAX_INPUTS:
        raise ValueError("%d texts in one request; the limit is %d (EMBTUNE_MAX_INPUTS)" % (len(texts), MAX_INPUTS))
    return texts


def predict_fn(texts, model):
    """Embeds every text; returns a list of L2-normalised vectors."""
    encoder, tokenizer, device = model["model"], model["tokenizer"], model["device"]
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenizer.encode_batch(texts[start:start + BATCH_SIZE])
            ids = torch.tensor([e.ids for e in batch], dtype=torch.long, device=device)
            mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.long, device=device)
            emb = encoder(ids, mask).float()
            emb = torch.nn.functional.normalize(emb, p=2.0, dim=1)
            vectors.extend(emb.cpu().tolist())
    return vectors


def output_fn(prediction, accept):
    """Serialises {"embeddings": [...]} as JSON (the only type offered)."""
    if _media_type(accept) not in (JSON, "*/*"):
        raise ValueError("unsupported accept type %r: only application/json is offered" % accept)
    return json.dumps({"embeddings": prediction})
`
