package main

import (
	"flag"
	"fmt"

	"github.com/embtune/embtune/embedding"
)

// registerTruncateDim adds --truncate-dim to encode, eval, index, query and
// serve: sentence-transformers' truncate_dim, for models trained with
// --matryoshka-dims.
func registerTruncateDim(fs *flag.FlagSet) *int {
	return fs.Int("truncate-dim", 0, "cut embeddings to their first N dimensions and re-normalise them, for Matryoshka models (sentence-transformers' truncate_dim; 0: the model's full dimension)")
}

// truncating checks --truncate-dim against the model's dimension (0:
// unknown, checked at the first Encode) and wraps enc.
func truncating(enc embedding.Encoder, dim, modelDim int) (embedding.Encoder, error) {
	if modelDim > 0 {
		if err := embedding.CheckTruncateDim(dim, modelDim); err != nil {
			return nil, usageError("--truncate-dim: %v", err)
		}
	}
	e, err := embedding.Truncate(enc, dim)
	if err != nil {
		return nil, usageError("--truncate-dim: %v", err)
	}
	return e, nil
}

// checkIndexDim refuses to query vectors of one dimension against an index
// or store of another.
func checkIndexDim(indexDim, queryDim int, truncateGiven bool) error {
	if indexDim == queryDim {
		return nil
	}
	if truncateGiven {
		return fmt.Errorf("the index holds %d-dimensional embeddings but --truncate-dim gives %d: query with --truncate-dim %d, or rebuild the index", indexDim, queryDim, indexDim)
	}
	return fmt.Errorf("the index holds %d-dimensional embeddings but the model gives %d: give --truncate-dim %d, or rebuild the index", indexDim, queryDim, indexDim)
}
