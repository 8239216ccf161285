package embedding

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/vecmath"
)

// Truncating cuts every vector of an Encoder to its first Dim dimensions
// and L2-normalises the result: sentence-transformers' truncate_dim with
// normalize_embeddings=True. ST itself cuts after the model's Normalize
// module and does not normalise again by default; cosine similarity is the
// same either way, and unit vectors keep dot product equal to cosine in
// indexes and stores.
type Truncating struct {
	Encoder Encoder
	Dim     int
}

// Truncate wraps enc so that it returns dim-dimensional vectors; dim 0
// returns enc unchanged. dim < 0 is an error; a dim larger than the
// model's is an error at the first Encode (see CheckTruncateDim to check
// up front when the model's dimension is known).
func Truncate(enc Encoder, dim int) (Encoder, error) {
	if dim < 0 {
		return nil, fmt.Errorf("truncate dim %d: must be at least 1 (0: no truncation)", dim)
	}
	if dim == 0 {
		return enc, nil
	}
	return Truncating{Encoder: enc, Dim: dim}, nil
}

// CheckTruncateDim checks a truncate dim against the model's embedding
// dimension modelDim: 0 (no truncation) or 1..modelDim.
func CheckTruncateDim(dim, modelDim int) error {
	switch {
	case dim < 0:
		return fmt.Errorf("truncate dim %d: must be at least 1 (0: no truncation)", dim)
	case dim > modelDim:
		return fmt.Errorf("truncate dim %d is larger than the model's embedding dimension %d", dim, modelDim)
	}
	return nil
}

// Encode embeds texts with the wrapped encoder and truncates each vector.
func (t Truncating) Encode(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	vs, err := t.Encoder.Encode(ctx, texts, batchSize)
	if err != nil {
		return nil, err
	}
	return TruncateVectors(vs, t.Dim)
}

// EncodeQueries implements RoleEncoder: the wrapped encoder's query
// prompt, if it has one, then the cut.
func (t Truncating) EncodeQueries(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	vs, err := Queries(ctx, t.Encoder, texts, batchSize)
	if err != nil {
		return nil, err
	}
	return TruncateVectors(vs, t.Dim)
}

// EncodeDocuments implements RoleEncoder, as EncodeQueries.
func (t Truncating) EncodeDocuments(ctx context.Context, texts []string, batchSize int) ([][]float32, error) {
	vs, err := Documents(ctx, t.Encoder, texts, batchSize)
	if err != nil {
		return nil, err
	}
	return TruncateVectors(vs, t.Dim)
}

// TruncateVectors cuts each vector to dim dimensions and normalises it, in
// new slices. A vector shorter than dim is an error naming both sizes.
func TruncateVectors(vs [][]float32, dim int) ([][]float32, error) {
	if dim == 0 {
		return vs, nil
	}
	out := make([][]float32, len(vs))
	for i, v := range vs {
		if err := CheckTruncateDim(dim, len(v)); err != nil {
			return nil, err
		}
		out[i] = vecmath.Truncate(v, dim)
	}
	return out, nil
}
