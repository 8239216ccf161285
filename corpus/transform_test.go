package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTransformOutputRoundTrip(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	chunks := []Chunk{
		{ID: "a#0", Doc: "a", Start: 0, End: 5, Tokens: 2, Text: "hello"},
		{ID: "a#1", Doc: "a", Start: 6, End: 11, Tokens: 2, Text: "world"},
		{ID: "b#0", Doc: "b", Start: 0, End: 3, Tokens: 1, Text: "foo"},
	}
	files, err := WriteChunks(in, chunks, 2)
	require.NoError(t, err)
	require.Len(t, files, 2)
	// What the server answers, one array per line (not normalised here).
	require.NoError(t, os.WriteFile(filepath.Join(out, "chunks-00000.jsonl.out"), []byte("[3,4]\n[1,0]\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "chunks-00001.jsonl.out"), []byte("[0,2]\n"), 0o644))
	got, vecs, err := ReadTransformOutput(in, out)
	require.NoError(t, err)
	assert.Equal(t, chunks, got)
	assert.InDeltaSlice(t, []float32{0.6, 0.8}, vecs[0], 1e-6)
	assert.InDeltaSlice(t, []float32{0, 1}, vecs[2], 1e-6)

	// Bare strings and {"text"} get ids from the file and line.
	plain := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(plain, "p.jsonl"), []byte("\"x\"\n{\"text\": \"y\"}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(out, "p.jsonl.out"), []byte("[1,0]\n[0,1]\n"), 0o644))
	got, _, err = ReadTransformOutput(plain, out)
	require.NoError(t, err)
	assert.Equal(t, []string{"p.jsonl#0", "p.jsonl#1"}, []string{got[0].ID, got[1].ID})
	assert.Equal(t, "y", got[1].Text)
}

func TestTransformOutputErrors(t *testing.T) {
	cases := []struct {
		name, in, out, msg string
	}{
		{"missing output", "\"x\"\n", "", "did the job finish"},
		{"fewer lines", "\"x\"\n\"y\"\n", "[1]\n", "has 1 lines, its input p.jsonl 2"},
		{"mixed dims", "\"x\"\n\"y\"\n", "[1,2]\n[1]\n", "line 2: 1 values, earlier lines 2"},
		{"not an array", "\"x\"\n", "{\"embedding\": [1]}\n", "JSON array"},
		{"no text", "{\"id\": \"q\"}\n", "[1]\n", `no "text"`},
		{"number input", "42\n", "[1]\n", "JSON string"},
		{"bad offsets", "{\"text\": \"a\", \"start\": 5, \"end\": 1}\n", "[1]\n", "offsets"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, out := t.TempDir(), t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(in, "p.jsonl"), []byte(c.in), 0o644))
			if c.out != "" {
				require.NoError(t, os.WriteFile(filepath.Join(out, "p.jsonl.out"), []byte(c.out), 0o644))
			}
			_, _, err := ReadTransformOutput(in, out)
			require.ErrorContains(t, err, c.msg)
		})
	}
	_, _, err := ReadTransformOutput(t.TempDir(), t.TempDir())
	require.ErrorContains(t, err, "no files")
}
