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
	_ "embed"
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
	"github.com/embtune/embtune/hf"
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

// inferenceScript is code/inference.py: the handler the AWS PyTorch and
// Hugging Face inference toolkits import from /opt/ml/model/code. It lives
// as a real Python file beside this one, run by TestInferenceScriptWithPeers.
//
//go:embed code/inference.py
var inferenceScript []byte

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
	if man.Dim, man.MaxSeqLength, err = hf.EmbeddingShape(root); err != nil {
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
