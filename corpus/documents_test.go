package corpus

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func gzipped(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestReadDocumentsFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.md"), []byte("# B\n\nWhat is b?\n"))
	write(t, filepath.Join(dir, "a", "faq.txt.gz"), gzipped(t, "\ufeffgzipped text"))
	write(t, filepath.Join(dir, "docs.jsonl"), []byte(`{"id":"x1","title":"X","text":"first"}`+"\n\n"+`{"text":"second","id":7}`+"\n"+`{"text":"third"}`+"\n"))
	write(t, filepath.Join(dir, "empty.rst"), []byte(" \n"))
	write(t, filepath.Join(dir, "image.png"), []byte{0x89, 'P', 'N', 'G'})
	write(t, filepath.Join(dir, ".hidden.md"), []byte("secret"))
	write(t, filepath.Join(dir, ".git", "x.txt"), []byte("object"))
	write(t, filepath.Join(dir, "none.jsonl"), []byte("\n"))
	outside := filepath.Join(t.TempDir(), "linked.txt")
	write(t, outside, []byte("linked file"))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "c.txt")))
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "loop"))) // links to folders are not followed

	docs, skipped, err := ReadDocuments([]string{dir})
	require.NoError(t, err)
	assert.Equal(t, 2, skipped, "empty.rst and none.jsonl")
	want := []Document{
		{ID: "a/faq.txt", Text: "gzipped text"},
		{ID: "b.md", Text: "# B\n\nWhat is b?\n"},
		{ID: "c.txt", Text: "linked file"},
		{ID: "x1", Title: "X", Text: "first"},
		{ID: "7", Text: "second"},
		{ID: "docs.jsonl:4", Text: "third"},
	}
	assert.Equal(t, want, docs)

	// A folder given as a link is walked.
	link := filepath.Join(t.TempDir(), "docs-link")
	require.NoError(t, os.Symlink(dir, link))
	viaLink, _, err := ReadDocuments([]string{link})
	require.NoError(t, err)
	assert.Equal(t, want, viaLink)

	// A file given directly is named by its file name.
	docs, _, err = ReadDocuments([]string{filepath.Join(dir, "b.md"), filepath.Join(dir, "a", "faq.txt.gz")})
	require.NoError(t, err)
	assert.Equal(t, "b.md", docs[0].ID)
	assert.Equal(t, "faq.txt", docs[1].ID)
	_, _, err = ReadDocuments([]string{filepath.Join(dir, "b.md"), filepath.Join(dir, "b.md")})
	assert.ErrorContains(t, err, `document id "b.md" already used`)
}

func TestReadDocumentsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		name, content, want string
	}{
		"bad utf8 text":  {"a.txt", "ok \xff\xfe", "not valid UTF-8 (first bad byte at offset 3)"},
		"bad utf8 jsonl": {"a.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"\xff\"}\n", "a.jsonl:2: not valid UTF-8"},
		"malformed json": {"a.jsonl", "{\"text\":\"ok\"}\n{\"text\":\n", "a.jsonl:2:"},
		"no text":        {"a.jsonl", `{"body":"x"}`, `a.jsonl:1: no "text" field`},
		"empty text":     {"a.jsonl", `{"text":"  "}`, `a.jsonl:1: "text" is empty`},
		"bad id":         {"a.jsonl", `{"text":"x","id":[1]}`, `"id" must be a string or a number`},
		"duplicate id":   {"a.jsonl", `{"text":"x","id":"q"}` + "\n" + `{"text":"y","id":"q"}`, `document id "q" already used by`},
		"not gzip":       {"a.txt.gz", "plain text, not gzip", "a.txt.gz: gzip: invalid header"},
		"unsupported":    {"a.pdf", "%PDF", "unsupported document type"},
		"only empty":     {"a.txt", "\n\n", "no documents with text"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name, c.name)
			write(t, p, []byte(c.content))
			_, _, err := ReadDocuments([]string{p})
			assert.ErrorContains(t, err, c.want)
		})
	}
	_, _, err := ReadDocuments(nil)
	assert.Error(t, err)
	_, _, err = ReadDocuments([]string{filepath.Join(dir, "missing")})
	assert.ErrorContains(t, err, "no such file")
	empty := filepath.Join(dir, "emptydir")
	require.NoError(t, os.Mkdir(empty, 0o755))
	_, _, err = ReadDocuments([]string{empty})
	assert.ErrorContains(t, err, "no documents with text")
}
