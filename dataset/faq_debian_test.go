package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Debian FAQ comes from tools/fetch-debian-faq.sh (make deps); the
// reference export is testdata/data/debian-faq.jsonl (see its README).
var (
	debianFAQPath = filepath.Join("..", "third_party", "debian-faq", "usr", "share", "doc", "debian", "FAQ", "debian-faq.en.txt.gz")
	debianRefPath = filepath.Join("..", "testdata", "data", "debian-faq.jsonl")
)

func readFAQJSONL(t *testing.T, path string) []FAQEntry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []FAQEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, MaxLineBytes)
	for sc.Scan() {
		var e FAQEntry
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestLoadFAQDebianMatchesReference(t *testing.T) {
	_, err := os.Stat(debianFAQPath)
	require.NoError(t, err, "the Debian FAQ is fetched by make deps (tools/fetch-debian-faq.sh)")
	_, err = os.Stat(debianRefPath)
	require.NoError(t, err)
	got, err := LoadFAQ(debianFAQPath, FAQOptions{IDPrefix: "debian-"})
	require.NoError(t, err)
	want := readFAQJSONL(t, debianRefPath)
	matched := 0
	for i := range min(len(got), len(want)) {
		if assert.Equal(t, want[i], got[i], "row %d", i) {
			matched++
		}
	}
	assert.Len(t, got, len(want))
	t.Logf("%d of %d rows match", matched, len(want))

	// WriteJSONL reproduces the reference file byte for byte.
	var buf bytes.Buffer
	require.NoError(t, WriteJSONL(&buf, got))
	ref, err := os.ReadFile(debianRefPath)
	require.NoError(t, err)
	assert.Equal(t, string(ref), buf.String())
}
