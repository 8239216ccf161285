package pgstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/embtune/embtune/corpus"
)

// docRows makes the rows of a corpus: chunks doc#0..doc#n-1 per document,
// each with its own random unit-free vector.
func docRows(docs map[string]int, seed uint64) []Row {
	names := make([]string, 0, len(docs))
	for d := range docs {
		names = append(names, d)
	}
	sort.Strings(names)
	r := rand.New(rand.NewPCG(seed, 1))
	var rows []Row
	for _, d := range names {
		for i := 0; i < docs[d]; i++ {
			v := make([]float32, 384)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			c := corpus.Chunk{ID: fmt.Sprintf("%s#%d", d, i), Doc: d, Text: fmt.Sprintf("%s chunk %d", d, i), Tokens: 3}
			rows = append(rows, Row{Ord: len(rows), Chunk: c, Vector: v})
		}
	}
	return rows
}

// indexRun writes rows as `embtune index --store` does: put, then (without
// --append) prune what the corpus lacks, then finish.
func indexRun(t *testing.T, s *Store, rows []Row, appendOnly bool) int64 {
	t.Helper()
	ctx := context.Background()
	w, err := s.Begin(ctx, testInfo(fingerprint))
	require.NoError(t, err)
	require.NoError(t, w.Put(ctx, rows))
	var deleted int64
	if !appendOnly {
		keep := make([]string, len(rows))
		for i, r := range rows {
			keep[i] = r.Chunk.ID
		}
		deleted, err = w.Prune(ctx, keep)
		require.NoError(t, err)
	}
	ready, err := w.Finish(ctx)
	require.NoError(t, err)
	require.True(t, ready)
	return deleted
}

// storedIDs lists the store's chunk ids as exact search finds them.
func storedIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	q, err := s.Searcher(ctx, fingerprint)
	require.NoError(t, err)
	v := make([]float32, 384)
	v[0] = 1
	res, err := q.QueryAll(ctx, []string{"q"}, [][]float32{v}, 1000)
	require.NoError(t, err)
	got := ids(res[0])
	sort.Strings(got)
	return got
}

func rowIDs(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Chunk.ID)
	}
	sort.Strings(out)
	return out
}

// TestRunMakesStoreEqualToCorpus: a document deleted, one shortened and one
// renamed between two runs leave none of their old chunks searchable, and
// the table of stores counts the documents there are.
func TestRunMakesStoreEqualToCorpus(t *testing.T) {
	s := open(t, "prune_sync", func(o *Options) { o.Exact = true })
	first := docRows(map[string]int{"keep": 2, "gone": 3, "short": 4, "old-name": 2}, 1)
	assert.Zero(t, indexRun(t, s, first, false))
	require.Equal(t, rowIDs(first), storedIDs(t, s))

	// "gone" deleted, "short" down to 1 chunk, "old-name" renamed.
	second := docRows(map[string]int{"keep": 2, "short": 1, "new-name": 2}, 2)
	deleted := indexRun(t, s, second, false)
	assert.Equal(t, int64(3+3+2), deleted)
	assert.Equal(t, rowIDs(second), storedIDs(t, s))
	st, err := s.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, st.Info.Documents)
	assert.Equal(t, len(second), st.Rows)
	assert.Equal(t, StateReady, st.State)

	// The same corpus again deletes nothing.
	assert.Zero(t, indexRun(t, s, second, false))
	assert.Equal(t, rowIDs(second), storedIDs(t, s))
}

// TestAppendKeepsChunks: --append adds and updates, and deletes nothing.
func TestAppendKeepsChunks(t *testing.T) {
	s := open(t, "prune_append", func(o *Options) { o.Exact = true })
	first := docRows(map[string]int{"a": 2, "b": 3}, 3)
	indexRun(t, s, first, false)
	second := docRows(map[string]int{"c": 1}, 4)
	indexRun(t, s, second, true)
	assert.Equal(t, rowIDs(append(first, second...)), storedIDs(t, s))
	st, err := s.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, st.Info.Documents)
}

// TestPruneResumes: a run interrupted after its puts, before pruning,
// leaves the old chunks; its re-run prunes them.
func TestPruneResumes(t *testing.T) {
	ctx := context.Background()
	s := open(t, "prune_resume", func(o *Options) { o.Exact = true })
	indexRun(t, s, docRows(map[string]int{"a": 2, "b": 2}, 5), false)
	second := docRows(map[string]int{"a": 1}, 6)
	w, err := s.Begin(ctx, testInfo(fingerprint))
	require.NoError(t, err)
	require.NoError(t, w.Put(ctx, second))
	w.Close() // interrupted
	_, err = s.Searcher(ctx, fingerprint)
	require.Error(t, err, "an interrupted run leaves the store building")
	assert.Equal(t, int64(3), indexRun(t, s, second, false))
	assert.Equal(t, rowIDs(second), storedIDs(t, s))
}
