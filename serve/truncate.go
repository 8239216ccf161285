package serve

import "github.com/embtune/embtune/vecmath"

// truncateVectors cuts each vector to its first dim dimensions (dim 0 or at
// least the vector's length: unchanged). With norm the cut vector is
// re-normalised, as sentence-transformers' truncate_dim with
// normalize_embeddings=True; without it the cut is returned as is, as ST
// does by default (TEI's "normalize": false).
func truncateVectors(vecs [][]float32, dim int, norm bool) [][]float32 {
	if dim <= 0 {
		return vecs
	}
	for i, v := range vecs {
		if dim >= len(v) {
			continue
		}
		if norm {
			vecs[i] = vecmath.Normalize(v[:dim], v[:dim])
		} else {
			vecs[i] = v[:dim]
		}
	}
	return vecs
}
