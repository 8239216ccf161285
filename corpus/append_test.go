package corpus

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docIndex is an index of documents with n chunks each (doc#0..doc#n-1).
func docIndex(t *testing.T, docs map[string]int, seed uint64) *Index {
	t.Helper()
	names := make([]string, 0, len(docs))
	for d := range docs {
		names = append(names, d)
	}
	sort.Strings(names)
	r := rand.New(rand.NewPCG(seed, 3))
	var chunks []Chunk
	var vecs [][]float32
	for _, d := range names {
		for i := 0; i < docs[d]; i++ {
			chunks = append(chunks, Chunk{ID: fmt.Sprintf("%s#%d", d, i), Doc: d, Text: fmt.Sprintf("%s %d", d, i)})
			v := make([]float32, 8)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			vecs = append(vecs, v)
		}
	}
	x, err := FromVectors(Info{Model: "m", ModelFingerprint: "fp", Documents: len(docs)}, chunks, vecs)
	require.NoError(t, err)
	return x
}

func chunkIDs(x *Index) []string {
	var out []string
	for _, c := range x.Chunks {
		out = append(out, c.ID)
	}
	sort.Strings(out)
	return out
}

// TestIndexFileIsTheCorpus: an index file written over an older one holds
// the new corpus alone (a deleted, a shortened and a renamed document
// leave nothing), as a store does; Append (--append) keeps the old
// chunks the new corpus lacks and takes the new ones where ids meet.
func TestIndexFileIsTheCorpus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.index")
	old := docIndex(t, map[string]int{"keep": 2, "gone": 3, "short": 4, "old-name": 2}, 1)
	require.NoError(t, old.Save(path))
	x := docIndex(t, map[string]int{"keep": 2, "short": 1, "new-name": 2}, 2)
	require.NoError(t, x.Save(path))
	got, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"keep#0", "keep#1", "new-name#0", "new-name#1", "short#0"}, chunkIDs(got))
	assert.Equal(t, 3, got.Info.Documents)

	both, err := Append(old, x)
	require.NoError(t, err)
	assert.Equal(t, []string{"gone#0", "gone#1", "gone#2", "keep#0", "keep#1", "new-name#0", "new-name#1",
		"old-name#0", "old-name#1", "short#0", "short#1", "short#2", "short#3"}, chunkIDs(both))
	assert.Equal(t, 5, both.Info.Documents)
	for i, c := range both.Chunks {
		// Each chunk finds itself, with the vector of the index it came from.
		from := x
		if c.Doc == "gone" || c.Doc == "old-name" || (c.Doc == "short" && c.ID != "short#0") {
			from = old
		}
		j := -1
		for k, d := range from.Chunks {
			if d.ID == c.ID {
				j = k
			}
		}
		require.GreaterOrEqual(t, j, 0, c.ID)
		assert.InDeltaSlice(t, from.Vector(j), both.Vector(i), 1e-6, c.ID)
	}

	other := docIndex(t, map[string]int{"a": 1}, 3)
	other.Info.ModelFingerprint = "another"
	_, err = Append(other, x)
	assert.ErrorContains(t, err, "another model")
}
