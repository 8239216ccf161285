package sagemaker

// Hardened extraction of a model archive: the inverse of PackageModel, for
// containers and tests, which refuses anything but plain files and folders
// under the destination, bounds sizes and counts, and checks every file
// against the manifest.

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
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

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
