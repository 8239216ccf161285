package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Split is one partition of a dataset into training and held-out pairs.
type Split struct{ Train, Test []Pair }

// permutation is the shuffle every split uses: PCG seeded with (seed, 0), so
// a seed gives the same split on every platform and Go release.
func permutation(n int, seed uint64) []int {
	return rand.New(rand.NewPCG(seed, 0)).Perm(n)
}

func pick(pairs []Pair, idx []int) []Pair {
	out := make([]Pair, len(idx))
	for i, j := range idx {
		out[i] = pairs[j]
	}
	return out
}

// TrainTestSplit shuffles deterministically by seed (math/rand/v2 PCG seeded with seed) and holds out round(len*testFraction) pairs (at least 1 each side), error if impossible.
func TrainTestSplit(pairs []Pair, testFraction float64, seed uint64) (Split, error) {
	n := len(pairs)
	if math.IsNaN(testFraction) || testFraction <= 0 || testFraction >= 1 {
		return Split{}, fmt.Errorf("dataset: test fraction %v is not in (0, 1)", testFraction)
	}
	if n < 2 {
		return Split{}, fmt.Errorf("dataset: cannot split %d pairs into non-empty train and test sets", n)
	}
	nTest := min(max(int(math.Round(float64(n)*testFraction)), 1), n-1)
	perm := permutation(n, seed)
	return Split{Train: pick(pairs, perm[nTest:]), Test: pick(pairs, perm[:nTest])}, nil
}

// KFold returns k splits; each pair is in exactly one Test fold; deterministic by seed; error if k < 2 or k > len(pairs).
// As in scikit-learn's KFold, the first len%k folds hold one pair more.
func KFold(pairs []Pair, k int, seed uint64) ([]Split, error) {
	n := len(pairs)
	if k < 2 || k > n {
		return nil, fmt.Errorf("dataset: k-fold needs 2 <= k <= %d pairs, got k = %d", n, k)
	}
	perm := permutation(n, seed)
	splits := make([]Split, k)
	start := 0
	for f := range k {
		size := n / k
		if f < n%k {
			size++
		}
		end := start + size
		train := slices.Concat(perm[:start], perm[end:])
		splits[f] = Split{Train: pick(pairs, train), Test: pick(pairs, perm[start:end])}
		start = end
	}
	return splits, nil
}

// Dedup removes exact duplicate pairs, keeping the first.
// A repeated pair in one batch is its own in-batch negative under
// MultipleNegativesRankingLoss, which pushes the model the wrong way.
func Dedup(pairs []Pair) []Pair {
	type key struct{ a, p, n string }
	seen := make(map[key]bool, len(pairs))
	out := make([]Pair, 0, len(pairs))
	for _, p := range pairs {
		// Length-prefixing keeps distinct negative lists from colliding.
		k := key{p.Anchor, p.Positive, ""}
		for _, n := range p.Negatives {
			k.n += fmt.Sprintf("%d:%s", len(n), n)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

// IRTask is an information-retrieval evaluation: queries, a corpus, and for each query the indexes of its relevant corpus documents.
// It is the input of sentence-transformers' InformationRetrievalEvaluator.
type IRTask struct {
	Queries  []string
	Corpus   []string
	Relevant [][]int
}

// NewIRTask builds the task the trainer evaluates on: queries are the held-out pairs' anchors; the corpus is ALL distinct positives of the whole dataset (train and test), deduplicated by exact text; each query's relevant doc is its own positive.
//
// Retrieving from every positive, not only the test ones, makes the task as
// hard as real use. Test anchors that repeat exactly become one query whose
// relevant docs are all their positives, so finding either one is not
// counted as a miss. Corpus order is first appearance in all, then any test
// positive missing from all.
func NewIRTask(all []Pair, test []Pair) IRTask {
	var t IRTask
	doc := map[string]int{}
	addDoc := func(s string) int {
		if i, ok := doc[s]; ok {
			return i
		}
		doc[s] = len(t.Corpus)
		t.Corpus = append(t.Corpus, s)
		return doc[s]
	}
	for _, p := range all {
		addDoc(p.Positive)
	}
	query := map[string]int{}
	for _, p := range test {
		d := addDoc(p.Positive)
		q, ok := query[p.Anchor]
		if !ok {
			q = len(t.Queries)
			query[p.Anchor] = q
			t.Queries = append(t.Queries, p.Anchor)
			t.Relevant = append(t.Relevant, nil)
		}
		if !slices.Contains(t.Relevant[q], d) {
			t.Relevant[q] = append(t.Relevant[q], d)
			slices.Sort(t.Relevant[q])
		}
	}
	return t
}
