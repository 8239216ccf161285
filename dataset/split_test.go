package dataset

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func makePairs(n int) []Pair {
	out := make([]Pair, n)
	for i := range out {
		out[i] = Pair{Anchor: fmt.Sprintf("q%d", i), Positive: fmt.Sprintf("a%d", i)}
	}
	return out
}

// anchors returns the sorted anchors, to compare sets of pairs.
func anchors(ps ...[]Pair) []string {
	var out []string
	for _, p := range ps {
		for _, x := range p {
			out = append(out, x.Anchor)
		}
	}
	sort.Strings(out)
	return out
}

func TestTrainTestSplit(t *testing.T) {
	pairs := makePairs(85)
	s1, err := TrainTestSplit(pairs, 0.2, 42)
	require.NoError(t, err)
	s2, err := TrainTestSplit(pairs, 0.2, 42)
	require.NoError(t, err)
	assert.Equal(t, s1, s2, "same seed, same split")
	assert.Len(t, s1.Test, 17) // round(85*0.2)
	assert.Len(t, s1.Train, 68)
	assert.Equal(t, anchors(pairs), anchors(s1.Train, s1.Test), "disjoint and complete")

	s3, err := TrainTestSplit(pairs, 0.2, 43)
	require.NoError(t, err)
	assert.NotEqual(t, anchors(s1.Test), anchors(s3.Test), "another seed, another split")

	// The input is left as it was.
	assert.Equal(t, makePairs(85), pairs)
}

func TestTrainTestSplitSizes(t *testing.T) {
	tests := []struct {
		n         int
		frac      float64
		wantTest  int
		wantError bool
	}{
		{10, 0.25, 3, false}, // 2.5 rounds half away from zero
		{10, 0.01, 1, false}, // at least one test pair
		{10, 0.99, 9, false}, // at least one train pair
		{2, 0.5, 1, false},
		{1, 0.5, 0, true},
		{0, 0.5, 0, true},
		{10, 0, 0, true},
		{10, 1, 0, true},
		{10, -0.1, 0, true},
		{10, math.NaN(), 0, true},
	}
	for _, tc := range tests {
		s, err := TrainTestSplit(makePairs(tc.n), tc.frac, 1)
		if tc.wantError {
			assert.Error(t, err, "n=%d frac=%v", tc.n, tc.frac)
			continue
		}
		require.NoError(t, err)
		assert.Len(t, s.Test, tc.wantTest, "n=%d frac=%v", tc.n, tc.frac)
		assert.Len(t, s.Train, tc.n-tc.wantTest)
	}
}

func TestKFold(t *testing.T) {
	pairs := makePairs(23)
	folds, err := KFold(pairs, 5, 7)
	require.NoError(t, err)
	again, err := KFold(pairs, 5, 7)
	require.NoError(t, err)
	assert.Equal(t, folds, again)
	require.Len(t, folds, 5)

	var tests [][]Pair
	for i, f := range folds {
		assert.Len(t, f.Test, []int{5, 5, 5, 4, 4}[i])
		assert.Equal(t, anchors(pairs), anchors(f.Train, f.Test), "fold %d: disjoint and complete", i)
		tests = append(tests, f.Test)
	}
	// Every pair is in exactly one test fold.
	assert.Equal(t, anchors(pairs), anchors(tests...))

	for _, k := range []int{-1, 0, 1, 24} {
		_, err := KFold(pairs, k, 7)
		assert.Error(t, err, "k=%d", k)
	}
	folds, err = KFold(pairs, 23, 7)
	require.NoError(t, err)
	assert.Len(t, folds[0].Test, 1)
}

func TestDedup(t *testing.T) {
	in := []Pair{
		{Anchor: "a", Positive: "b"},
		{Anchor: "a", Positive: "c"},
		{Anchor: "a", Positive: "b"},
		{Anchor: "a", Positive: "b", Negatives: []string{"x"}},
		{Anchor: "a", Positive: "b", Negatives: []string{"x"}},
		{Anchor: "a", Positive: "b", Negatives: []string{"1:x"}},
		{Anchor: "a", Positive: "b", Negatives: []string{"x", ""}},
	}
	assert.Equal(t, []Pair{in[0], in[1], in[3], in[5], in[6]}, Dedup(in))
	assert.Empty(t, Dedup(nil))
}

func TestNewIRTask(t *testing.T) {
	all := []Pair{
		{Anchor: "q0", Positive: "d0"},
		{Anchor: "q1", Positive: "d1"},
		{Anchor: "q2", Positive: "d0"}, // shares its positive with q0
		{Anchor: "q3", Positive: "d3"},
		{Anchor: "q1", Positive: "d4"}, // a second answer to q1
	}
	test := []Pair{all[2], all[1], all[4], {Anchor: "q9", Positive: "d9"}}
	task := NewIRTask(all, test)
	assert.Equal(t, []string{"d0", "d1", "d3", "d4", "d9"}, task.Corpus)
	assert.Equal(t, []string{"q2", "q1", "q9"}, task.Queries)
	assert.Equal(t, [][]int{{0}, {1, 3}, {4}}, task.Relevant)

	// From a split: every query has its positive in the corpus of all pairs.
	pairs := makePairs(30)
	s, err := TrainTestSplit(pairs, 0.2, 3)
	require.NoError(t, err)
	task = NewIRTask(pairs, s.Test)
	assert.Len(t, task.Corpus, 30)
	require.Len(t, task.Queries, 6)
	for i, q := range task.Queries {
		require.Len(t, task.Relevant[i], 1)
		assert.Equal(t, "a"+q[1:], task.Corpus[task.Relevant[i][0]])
	}
}
