package minilm

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Smoothing moves range from the input into the weight without changing the
// product: (x / s) · (W diag(s))ᵀ = x · Wᵀ, and the outlier channel (γ 20)
// is the one scaled down the most.
func TestSmoothingKeepsTheProduct(t *testing.T) {
	in := smoothedInput{gamma: []float32{1, 20, 0.5}, beta: []float32{0.1, -3, 0}}
	w := []float32{0.2, -0.1, 0.4, -0.3, 0.05, 0.1} // 2×3
	x := []float32{0.7, 18, -0.4}
	want := matVec(w, 2, 3, x)
	s, err := smoothingScales(in, w, 2, 3)
	require.NoError(t, err)
	ws := append([]float32(nil), w...)
	inv := smoothLinear(ws, 2, 3, s)
	xs := make([]float32, 3)
	for j := range x {
		xs[j] = x[j] * inv[j]
	}
	got := matVec(ws, 2, 3, xs)
	assert.InDeltaSlice(t, want, got, 1e-5)
	assert.Greater(t, s[1], s[0], "the outlier channel's input is divided the most")
	assert.Greater(t, s[1], s[2])
}

func matVec(w []float32, rows, cols int, x []float32) []float64 {
	out := make([]float64, rows)
	for i := range out {
		for j := 0; j < cols; j++ {
			out[i] += float64(w[i*cols+j]) * float64(x[j])
		}
	}
	return out
}

func TestSmoothingRefusesBadShapes(t *testing.T) {
	nan := float32(math.NaN())
	for name, tc := range map[string]struct {
		in   smoothedInput
		w    []float32
		rows int
		cols int
		want string
	}{
		"short gamma":  {smoothedInput{[]float32{1}, []float32{0, 0}}, make([]float32, 4), 2, 2, "LayerNorm of 1 and 2 channels"},
		"short weight": {smoothedInput{[]float32{1, 1}, []float32{0, 0}}, make([]float32, 3), 2, 2, "weight of 3 values, 2×2"},
		"nan gamma":    {smoothedInput{[]float32{1, nan}, []float32{0, 0}}, []float32{1, 1, 1, 1}, 2, 2, "channel 1 has scale NaN"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := smoothingScales(tc.in, tc.w, tc.rows, tc.cols)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
