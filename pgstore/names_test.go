package pgstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTableNamesOfTemporaryObjects: stores named as the writer's temporary
// table once was, or as another store's HNSW index once was, write and
// search like any other; the table of stores itself is refused.
func TestTableNamesOfTemporaryObjects(t *testing.T) {
	for _, table := range []string{"embtune_put", "names_x", "names_x_hnsw"} {
		t.Run(table, func(t *testing.T) {
			s := open(t, table, func(o *Options) { o.Exact = true })
			rows := docRows(map[string]int{"a": 2, "b": 1}, 7)
			indexRun(t, s, rows, false)
			assert.Equal(t, rowIDs(rows), storedIDs(t, s))
			st, err := s.Status(context.Background())
			require.NoError(t, err)
			assert.Equal(t, StateReady, st.State)
		})
	}
	_, err := Open(context.Background(), server.URL, Options{Table: metaTable})
	assert.ErrorContains(t, err, "table of stores")
}
