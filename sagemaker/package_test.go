package sagemaker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeOutputFolder lays out what `embtune train` writes, with small
// stand-ins for the weights, plus the by-products that must stay out.
func fakeOutputFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"model.pt":                          "torchscript archive stand-in",
		"model.safetensors":                 "safetensors stand-in",
		"config.json":                       `{"hidden_size": 384, "max_position_embeddings": 512, "model_type": "bert"}`,
		"tokenizer.json":                    `{"version": "1.0"}`,
		"tokenizer_config.json":             `{"do_lower_case": true}`,
		"vocab.txt":                         "[PAD]\n[UNK]\n[CLS]\n[SEP]\n",
		"special_tokens_map.json":           `{"pad_token": "[PAD]"}`,
		"modules.json":                      `[{"idx": 0, "path": ""}, {"idx": 1, "path": "1_Pooling"}, {"idx": 2, "path": "2_Normalize"}]`,
		"sentence_bert_config.json":         `{"max_seq_length": 256, "do_lower_case": false}`,
		"config_sentence_transformers.json": `{"__version__": {}}`,
		"README.md":                         "# model card\n",
		"1_Pooling/config.json":             `{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}`,
		// Left out of the archive:
		"eval.json":                  `{"base": {}}`,
		"loss.csv":                   "step,loss\n",
		"loss.svg":                   "<svg/>",
		"checkpoints/step-10/a.bin":  "checkpoint",
		"split/train.jsonl":          "{}\n",
		"folds/fold-1/test.jsonl":    "{}\n",
		"old.tar.gz":                 "an older package",
		".model.pt.tmp-123":          "an interrupted atomic write",
		"code/inference.py":          "a stale handler, replaced by the generated one",
		"embtune-manifest.json":      "a stale manifest",
		"1_Pooling/.config.json.tmp": "hidden",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "2_Normalize"), 0o755))
	return dir
}

// archivedNames lists the files fakeOutputFolder's archive must hold.
var archivedNames = []string{
	"1_Pooling/config.json", "README.md", "code/inference.py", "code/requirements.txt", "config.json",
	"config_sentence_transformers.json", "embtune-manifest.json", "model.pt", "model.safetensors",
	"modules.json", "sentence_bert_config.json", "special_tokens_map.json", "tokenizer.json",
	"tokenizer_config.json", "vocab.txt",
}

// walkFiles maps every regular file under dir to its content.
func walkFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	}))
	return out
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func readTarGz(t *testing.T, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, tarEntry{*h, b})
	}
}

func TestPackageRoundTrip(t *testing.T) {
	src := fakeOutputFolder(t)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// The tarball may be written into the folder it packs.
	dest := filepath.Join(src, "model.tar.gz")
	man, err := PackageModel(src, dest, PackageOptions{ModelName: "debian-faq-minilm", Version: "embtune test", Created: created})
	require.NoError(t, err)

	assert.Equal(t, ManifestFormat, man.Format)
	assert.Equal(t, "debian-faq-minilm", man.Model)
	assert.Equal(t, 384, man.Dim)
	assert.Equal(t, 256, man.MaxSeqLength)
	assert.Equal(t, "embtune test", man.EmbtuneVersion)
	assert.Equal(t, created, man.Created)
	var listed []string
	for _, f := range man.Files {
		listed = append(listed, f.Path)
	}
	assert.True(t, sort.StringsAreSorted(listed), "manifest order: %v", listed)
	var want []string
	for _, n := range archivedNames {
		if n != ManifestName {
			want = append(want, n)
		}
	}
	assert.Equal(t, want, listed)

	// Entries: sorted, directories before their files, the manifest last,
	// regular files and directories only, owned by root, stamped with Created.
	entries := readTarGz(t, dest)
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
		assert.Contains(t, []byte{tar.TypeReg, tar.TypeDir}, e.hdr.Typeflag, e.hdr.Name)
		assert.Equal(t, 0, e.hdr.Uid)
		assert.Equal(t, 0, e.hdr.Gid)
		assert.True(t, e.hdr.ModTime.Equal(created), e.hdr.Name)
		if e.hdr.Typeflag == tar.TypeDir {
			assert.Equal(t, int64(0o755), e.hdr.Mode)
		} else {
			assert.Equal(t, int64(0o644), e.hdr.Mode)
		}
	}
	assert.Equal(t, []string{"1_Pooling/", "1_Pooling/config.json", "2_Normalize/", "README.md", "code/",
		"code/inference.py", "code/requirements.txt", "config.json", "config_sentence_transformers.json",
		"model.pt", "model.safetensors", "modules.json", "sentence_bert_config.json", "special_tokens_map.json",
		"tokenizer.json", "tokenizer_config.json", "vocab.txt", ManifestName}, names)
	var stored Manifest
	require.NoError(t, json.Unmarshal(entries[len(entries)-1].body, &stored))
	assert.Equal(t, man, stored)

	// Extraction gives back the same bytes; the manifest's hashes match.
	out := filepath.Join(t.TempDir(), "model")
	require.NoError(t, ExtractModel(dest, out))
	got := walkFiles(t, out)
	srcFiles := walkFiles(t, src)
	for _, f := range man.Files {
		sum := sha256.Sum256(got[f.Path])
		assert.Equal(t, f.SHA256, hex.EncodeToString(sum[:]), f.Path)
		assert.Equal(t, f.Size, int64(len(got[f.Path])), f.Path)
		if !strings.HasPrefix(f.Path, "code/") {
			assert.Equal(t, srcFiles[f.Path], got[f.Path], f.Path)
		}
	}
	assert.Len(t, got, len(archivedNames))
	assert.DirExists(t, filepath.Join(out, "2_Normalize"))
	assert.Equal(t, string(inferenceScript), string(got["code/inference.py"]))
	assert.Contains(t, string(got["code/requirements.txt"]), "tokenizers")

	// The same files and Created give the same bytes.
	again := filepath.Join(t.TempDir(), "again.tar.gz")
	_, err = PackageModel(src, again, PackageOptions{ModelName: "debian-faq-minilm", Version: "embtune test", Created: created})
	require.NoError(t, err)
	a, err := os.ReadFile(dest)
	require.NoError(t, err)
	b, err := os.ReadFile(again)
	require.NoError(t, err)
	require.NotEmpty(t, a)
	assert.Equal(t, sha256.Sum256(a), sha256.Sum256(b), "packaging is not reproducible")

	// Defaults: the folder's name, the build's version, now; NoCode drops code/.
	dflt, err := PackageModel(src, filepath.Join(t.TempDir(), "m.tar.gz"), PackageOptions{NoCode: true, Fast: true})
	require.NoError(t, err)
	assert.Equal(t, filepath.Base(src), dflt.Model)
	assert.True(t, strings.HasPrefix(dflt.EmbtuneVersion, "embtune "), dflt.EmbtuneVersion)
	assert.WithinDuration(t, time.Now(), dflt.Created, time.Minute)
	for _, f := range dflt.Files {
		assert.False(t, strings.HasPrefix(f.Path, "code/"), f.Path)
	}
}

// noTempFiles fails if a packaging run left anything but want in dir.
func noTempFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, want, names)
}

func TestPackageRequiredFiles(t *testing.T) {
	for _, missing := range requiredFiles {
		t.Run(missing, func(t *testing.T) {
			src := fakeOutputFolder(t)
			require.NoError(t, os.Remove(filepath.Join(src, missing)))
			outDir := t.TempDir()
			_, err := PackageModel(src, filepath.Join(outDir, "model.tar.gz"), PackageOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "missing "+missing)
			noTempFiles(t, outDir)
		})
	}
	_, err := PackageModel(filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir(), "m.tar.gz"), PackageOptions{})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestPackageSymlinks(t *testing.T) {
	src := fakeOutputFolder(t)
	// A link to a file inside the folder is archived as that file.
	require.NoError(t, os.Rename(filepath.Join(src, "vocab.txt"), filepath.Join(src, "1_Pooling", "vocab.real")))
	require.NoError(t, os.Symlink(filepath.Join("1_Pooling", "vocab.real"), filepath.Join(src, "vocab.txt")))
	outDir := t.TempDir()
	dest := filepath.Join(outDir, "model.tar.gz")
	_, err := PackageModel(src, dest, PackageOptions{})
	require.NoError(t, err)
	for _, e := range readTarGz(t, dest) {
		if e.hdr.Name == "vocab.txt" {
			assert.Equal(t, byte(tar.TypeReg), e.hdr.Typeflag)
			assert.Equal(t, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", string(e.body))
		}
	}

	// A link out of the folder is refused, and the old tarball stays.
	outside := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(outside, []byte("not part of the model"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(src, "1_Pooling", "extra.json")))
	before, err := os.ReadFile(dest)
	require.NoError(t, err)
	require.NotEmpty(t, before)
	_, err = PackageModel(src, dest, PackageOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside the model folder")
	after, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	noTempFiles(t, outDir, "model.tar.gz")

	// So is a link that climbs out through "..".
	require.NoError(t, os.Remove(filepath.Join(src, "1_Pooling", "extra.json")))
	rel, err := filepath.Rel(filepath.Join(src, "1_Pooling"), outside)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(src, "1_Pooling", "extra.json")))
	_, err = PackageModel(src, dest, PackageOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside the model folder")
}

func TestPackageFailureIsAtomic(t *testing.T) {
	src := fakeOutputFolder(t)
	outDir := t.TempDir()
	dest := filepath.Join(outDir, "model.tar.gz")
	require.NoError(t, os.WriteFile(dest, []byte("the previous package"), 0o644))

	// Half way through the archive.
	boom := errors.New("disk on fire")
	beforeArchiveEntry = func(rel string) error {
		if rel == "model.safetensors" {
			return boom
		}
		return nil
	}
	t.Cleanup(func() { beforeArchiveEntry = func(string) error { return nil } })
	_, err := PackageModel(src, dest, PackageOptions{})
	require.ErrorIs(t, err, boom)
	b, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.Equal(t, "the previous package", string(b))
	noTempFiles(t, outDir, "model.tar.gz")
	beforeArchiveEntry = func(string) error { return nil }

	// At the final rename: dest is a folder.
	destDir := filepath.Join(outDir, "taken")
	require.NoError(t, os.MkdirAll(filepath.Join(destDir, "x"), 0o755))
	_, err = PackageModel(src, destDir, PackageOptions{})
	require.Error(t, err)
	noTempFiles(t, outDir, "model.tar.gz", "taken")
}

// badArchive builds a gzip tar from headers; bodies are their names.
func badArchive(t *testing.T, hdrs ...tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range hdrs {
		h := h
		body := []byte(h.Name)
		if h.Typeflag == tar.TypeReg {
			if h.Size == 0 {
				h.Size = int64(len(body))
			} else {
				body = bytes.Repeat([]byte("x"), int(h.Size))
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		require.NoError(t, tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	p := filepath.Join(t.TempDir(), "bad.tar.gz")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

func regEntry(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name} }

func TestExtractRejectsHostileArchives(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	cases := map[string]struct {
		hdrs []tar.Header
		msg  string
	}{
		"absolute":        {[]tar.Header{regEntry("config.json"), regEntry(victim)}, "absolute path"},
		"dotdot":          {[]tar.Header{regEntry("../victim")}, `".." in path`},
		"dotdot inside":   {[]tar.Header{regEntry("a/../../victim")}, `".." in path`},
		"dotdot harmless": {[]tar.Header{regEntry("a/../config.json")}, `".." in path`},
		"symlink":         {[]tar.Header{{Typeflag: tar.TypeSymlink, Name: "config.json", Linkname: "/etc/passwd"}}, "is a link"},
		"symlink dir":     {[]tar.Header{{Typeflag: tar.TypeSymlink, Name: "d", Linkname: "/tmp"}, regEntry("d/x")}, "is a link"},
		"hardlink":        {[]tar.Header{regEntry("a"), {Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}}, "is a link"},
		"device":          {[]tar.Header{{Typeflag: tar.TypeChar, Name: "tty", Devmajor: 5}}, "has type"},
		"fifo":            {[]tar.Header{{Typeflag: tar.TypeFifo, Name: "pipe"}}, "has type"},
		"duplicate":       {[]tar.Header{regEntry("config.json"), regEntry("./config.json")}, "appears twice"},
		"backslash":       {[]tar.Header{regEntry(`..\victim`)}, "invalid name"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			archive := badArchive(t, c.hdrs...)
			dest := filepath.Join(t.TempDir(), "model")
			err := ExtractModel(archive, dest)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.msg)
			noTempFiles(t, dest)
			assert.NoFileExists(t, victim)
		})
	}

	t.Run("not gzip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "plain.tar")
		require.NoError(t, os.WriteFile(p, []byte("definitely not an archive"), 0o644))
		err := ExtractModel(p, filepath.Join(t.TempDir(), "m"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not a gzip-compressed tar")
	})

	t.Run("truncated", func(t *testing.T) {
		src := fakeOutputFolder(t)
		good := filepath.Join(t.TempDir(), "m.tar.gz")
		_, err := PackageModel(src, good, PackageOptions{})
		require.NoError(t, err)
		b, err := os.ReadFile(good)
		require.NoError(t, err)
		cut := filepath.Join(t.TempDir(), "cut.tar.gz")
		require.NoError(t, os.WriteFile(cut, b[:len(b)-40], 0o644))
		dest := filepath.Join(t.TempDir(), "m")
		require.Error(t, ExtractModel(cut, dest))
		noTempFiles(t, dest)
	})

	t.Run("not empty", func(t *testing.T) {
		dest := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dest, "keep"), []byte("mine"), 0o644))
		err := ExtractModel(badArchive(t, regEntry("config.json")), dest)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "not empty")
		noTempFiles(t, dest, "keep")
	})

	t.Run("tar -C dir . layout", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "m")
		require.NoError(t, ExtractModel(badArchive(t, tar.Header{Typeflag: tar.TypeDir, Name: "./"},
			regEntry("./config.json"), tar.Header{Typeflag: tar.TypeDir, Name: "./1_Pooling/"}, regEntry("./1_Pooling/config.json")), dest))
		assert.Equal(t, map[string][]byte{"config.json": []byte("./config.json"), "1_Pooling/config.json": []byte("./1_Pooling/config.json")},
			walkFiles(t, dest))
	})
}

// TestExtractChecksManifest tampers with a packaged archive.
func TestExtractChecksManifest(t *testing.T) {
	src := fakeOutputFolder(t)
	good := filepath.Join(t.TempDir(), "m.tar.gz")
	man, err := PackageModel(src, good, PackageOptions{})
	require.NoError(t, err)
	entries := readTarGz(t, good)

	rebuild := func(t *testing.T, edit func([]tarEntry) []tarEntry) string {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, e := range edit(append([]tarEntry(nil), entries...)) {
			h := e.hdr
			h.Size = int64(len(e.body))
			require.NoError(t, tw.WriteHeader(&h))
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
		require.NoError(t, tw.Close())
		require.NoError(t, gz.Close())
		p := filepath.Join(t.TempDir(), "tampered.tar.gz")
		require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
		return p
	}
	index := func(es []tarEntry, name string) int {
		for i, e := range es {
			if e.hdr.Name == name {
				return i
			}
		}
		t.Fatalf("%s not in the archive", name)
		return -1
	}
	cases := map[string]struct {
		edit func([]tarEntry) []tarEntry
		msg  string
	}{
		"changed weights": {func(es []tarEntry) []tarEntry {
			i := index(es, "model.safetensors")
			es[i].body = []byte("safetensors stand-IN")
			return es
		}, "model.safetensors has the wrong sha256"},
		"resized file": {func(es []tarEntry) []tarEntry {
			i := index(es, "vocab.txt")
			es[i].body = append(es[i].body, "extra\n"...)
			return es
		}, "vocab.txt has"},
		"dropped file": {func(es []tarEntry) []tarEntry {
			i := index(es, "model.pt")
			return append(es[:i], es[i+1:]...)
		}, "model.pt is listed but missing"},
		"smuggled file": {func(es []tarEntry) []tarEntry {
			extra := tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "code/evil.py", Mode: 0o644}, []byte("import os")}
			return append(es[:len(es)-1], extra, es[len(es)-1])
		}, "code/evil.py is not in the manifest"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "m")
			err := ExtractModel(rebuild(t, c.edit), dest)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.msg)
			noTempFiles(t, dest)
		})
	}
	require.NotEmpty(t, man.Files)
}

// goldenSample picks texts of the golden corpus with their
// sentence-transformers embeddings: every 40th and the empty ones, as many
// as fill whole batches of 4 (mixed lengths, so padding and the attention
// mask matter), then the longest text (2,857 tokens, truncated at
// max_seq_length) alone in the last batch.
func goldenSample(t *testing.T, dir string) ([]string, [][]float32) {
	t.Helper()
	lines, err := os.ReadFile(filepath.Join(dir, "tokens.jsonl"))
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(dir, "embeddings.f32"))
	require.NoError(t, err)
	const dim = 384
	var texts, long []string
	var vecs, longVecs [][]float32
	for i, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var row struct {
			Text  string `json:"text"`
			HFIDs []int  `json:"hf_ids"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &row))
		isLong := len(row.HFIDs) > 2000
		if i%40 != 0 && len(row.HFIDs) > 2 && !isLong {
			continue
		}
		require.GreaterOrEqual(t, len(raw), (i+1)*dim*4)
		v := make([]float32, dim)
		for j := range v {
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[(i*dim+j)*4:]))
		}
		if isLong {
			long, longVecs = append(long, row.Text), append(longVecs, v)
		} else {
			texts, vecs = append(texts, row.Text), append(vecs, v)
		}
	}
	require.Len(t, long, 1)
	n := len(texts) / 4 * 4
	return append(texts[:n], long...), append(vecs[:n], longVecs...)
}

// copyTestFile hard-links from to to where it can (same file system), else copies.
func copyTestFile(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	if os.Link(from, to) == nil {
		return
	}
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	require.NoError(t, os.WriteFile(to, b, 0o644))
}
