package topk

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSelectMatchesStableSort compares with a stable sort by descending
// score (sentence-transformers' ranking, ties in index order), on scores
// drawn from a few values so that ties are everywhere.
func TestSelectMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := r.IntN(60)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(r.IntN(7)) / 4
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		sort.SliceStable(want, func(a, b int) bool { return scores[want[a]] > scores[want[b]] })
		for _, k := range []int{0, 1, 3, n / 2, n, n + 5} {
			got := Select(scores, k)
			idx := make([]int, len(got))
			for i, h := range got {
				idx[i] = h.Index
				assert.Equal(t, scores[h.Index], h.Score)
			}
			assert.Equal(t, want[:min(max(k, 0), n)], idx, "trial %d, n %d, k %d", trial, n, k)
		}
	}
}

func TestHeapStream(t *testing.T) {
	h := New[float64](3)
	for i, s := range []float64{0.5, 0.9, 0.5, 0.1, 0.9, 0.7} {
		h.Offer(i, s)
	}
	assert.Equal(t, 3, h.Len())
	assert.Equal(t, []Hit[float64]{{1, 0.9}, {4, 0.9}, {5, 0.7}}, h.Sorted())
	assert.Equal(t, 0, h.Len())
	assert.Empty(t, New[float32](0).Sorted())
}
