package embedding

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fixedEncoder struct {
	vecs [][]float32
	err  error
}

func (f fixedEncoder) Encode(context.Context, []string, int) ([][]float32, error) {
	return f.vecs, f.err
}

func TestTruncate(t *testing.T) {
	base := fixedEncoder{vecs: [][]float32{{3, 4, 12}, {0, 0, 5}}}
	same, err := Truncate(base, 0)
	require.NoError(t, err)
	assert.Equal(t, base, same, "0 is no truncation")

	enc, err := Truncate(base, 2)
	require.NoError(t, err)
	got, err := enc.Encode(context.Background(), []string{"a", "b"}, 0)
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{0.6, 0.8}, {0, 0}}, got, "cut, then normalised; a zero cut stays zero")
	assert.Equal(t, []float32{3, 4, 12}, base.vecs[0], "the encoder's vectors are not changed")

	enc, err = Truncate(base, 4)
	require.NoError(t, err)
	_, err = enc.Encode(context.Background(), []string{"a"}, 0)
	assert.EqualError(t, err, "truncate dim 4 is larger than the model's embedding dimension 3")

	_, err = Truncate(base, -1)
	assert.ErrorContains(t, err, "must be at least 1")

	boom := errors.New("boom")
	enc, err = Truncate(fixedEncoder{err: boom}, 2)
	require.NoError(t, err)
	_, err = enc.Encode(context.Background(), nil, 0)
	assert.ErrorIs(t, err, boom)

	assert.NoError(t, CheckTruncateDim(0, 384))
	assert.NoError(t, CheckTruncateDim(384, 384))
	assert.Error(t, CheckTruncateDim(385, 384))
	assert.Error(t, CheckTruncateDim(-5, 384))
}
