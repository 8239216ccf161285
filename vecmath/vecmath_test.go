package vecmath

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalize(t *testing.T) {
	v := []float32{3, 4}
	assert.Equal(t, []float32{0.6, 0.8}, Normalized(v))
	assert.Equal(t, []float32{3, 4}, v, "Normalized copies")
	assert.Equal(t, []float32{0, 0}, Normalized([]float32{0, 0}), "a zero vector stays zero")
	Normalize(v, v)
	assert.Equal(t, []float32{0.6, 0.8}, v, "in place")
	tiny := []float32{1e-30, 0}
	assert.Equal(t, []float32{1e-18, 0}, Normalized(tiny), "divided by eps 1e-12, as torch")
}

// TestDotAndCosine checks the float32 eight-sum dot product and the
// float64 cosine against float64 references.
func TestDotAndCosine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 9, 384, 1000} {
		a, b := make([]float32, n), make([]float32, n)
		var ref, na, nb float64
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			ref += float64(a[i]) * float64(b[i])
			na += float64(a[i]) * float64(a[i])
			nb += float64(b[i]) * float64(b[i])
		}
		assert.InDelta(t, ref, float64(Dot(a, b)), 1e-4*math.Sqrt(float64(n)+1), "n %d", n)
		if n > 0 {
			assert.InDelta(t, ref/math.Sqrt(na*nb), Cosine(a, b), 1e-12, "n %d", n)
			assert.InDelta(t, math.Sqrt(na), float64(Norm(a)), 1e-5*math.Sqrt(na))
		}
	}
	assert.Zero(t, Cosine([]float32{0, 0}, []float32{1, 0}))
	assert.True(t, Finite([]float32{1, -2}))
	assert.False(t, Finite([]float32{1, float32(math.NaN())}))
	assert.False(t, Finite([]float32{float32(math.Inf(-1))}))
}
