package embedding

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoEncoder records the texts it was given.
type echoEncoder struct{ got *[]string }

func (e echoEncoder) Encode(_ context.Context, texts []string, _ int) ([][]float32, error) {
	*e.got = append(*e.got, texts...)
	return make([][]float32, len(texts)), nil
}

func TestPromptedPrependsByRole(t *testing.T) {
	var got []string
	p := Prompted{Encoder: echoEncoder{&got}, Query: "query: ", Document: "passage: "}
	ctx := context.Background()
	_, err := Queries(ctx, p, []string{"a"}, 0)
	require.NoError(t, err)
	_, err = Documents(ctx, p, []string{"b"}, 0)
	require.NoError(t, err)
	_, err = p.Encode(ctx, []string{"c"}, 0)
	require.NoError(t, err)
	plain := echoEncoder{&got}
	_, err = Queries(ctx, plain, []string{"d"}, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"query: a", "passage: b", "c", "d"}, got)
}
