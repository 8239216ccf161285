package trainer

import (
	"math/rand/v2"

	"github.com/embtune/embtune/dataset"
)

// epochOrder is the shuffled order of pair indexes for an epoch. It depends
// only on the seed and the epoch, so a resumed run recomputes it exactly.
func epochOrder(n int, seed uint64, epoch int) []int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)+0x9e3779b97f4a7c15))
	return r.Perm(n)
}

// Batches splits an epoch's order into batches. With noDuplicates it mirrors
// sentence-transformers' NoDuplicatesBatchSampler: walking the shuffled
// order, a pair joins the current batch only if none of its texts is
// already in it; skipped pairs wait for a later batch. Without it, batches
// are consecutive slices (a shuffled DataLoader). The last, smaller batch is
// kept (drop_last=False), but a batch of one pair has no negatives and is
// dropped.
func Batches(pairs []dataset.Pair, order []int, batchSize int, noDuplicates bool) [][]int {
	var out [][]int
	if !noDuplicates {
		for i := 0; i < len(order); i += batchSize {
			out = append(out, append([]int(nil), order[i:min(i+batchSize, len(order))]...))
		}
		return dropSingles(out)
	}
	remaining := append([]int(nil), order...)
	for len(remaining) > 0 {
		seen := map[string]bool{}
		var batch, deferred []int
		i := 0
		for ; i < len(remaining) && len(batch) < batchSize; i++ {
			idx := remaining[i]
			if clashes(pairs[idx], seen) {
				deferred = append(deferred, idx)
				continue
			}
			for _, t := range texts(pairs[idx]) {
				seen[t] = true
			}
			batch = append(batch, idx)
		}
		out = append(out, batch)
		// Deferred pairs keep their place at the front, as in ST's linked list.
		remaining = append(deferred, remaining[i:]...)
	}
	return dropSingles(out)
}

func dropSingles(batches [][]int) [][]int {
	out := batches[:0]
	for _, b := range batches {
		if len(b) > 1 {
			out = append(out, b)
		}
	}
	return out
}

func texts(p dataset.Pair) []string {
	return append([]string{p.Anchor, p.Positive}, p.Negatives...)
}

func clashes(p dataset.Pair, seen map[string]bool) bool {
	for _, t := range texts(p) {
		if seen[t] {
			return true
		}
	}
	return false
}
