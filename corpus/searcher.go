package corpus

import (
	"context"
	"fmt"
)

// Searcher answers text queries, given their embeddings, with the k most
// similar chunks of a store: the embedded index file (*Index) and a
// PostgreSQL table with pgvector (pgstore.Searcher) both do, with the same
// result shape.
type Searcher interface {
	QueryAll(ctx context.Context, queries []string, vecs [][]float32, k int) ([]Result, error)
	// Len is the number of chunks searched.
	Len() int
}

// QueryAll runs Query for each query; exact search in memory needs no
// context, but a long batch stops when ctx ends.
func (x *Index) QueryAll(ctx context.Context, queries []string, vecs [][]float32, k int) ([]Result, error) {
	if len(queries) != len(vecs) {
		return nil, fmt.Errorf("search: %d queries but %d vectors", len(queries), len(vecs))
	}
	out := make([]Result, len(queries))
	for i, q := range queries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if out[i], err = x.Query(q, vecs[i], k); err != nil {
			return nil, err
		}
	}
	return out, nil
}
