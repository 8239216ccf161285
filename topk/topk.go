// Package topk keeps the k best of a stream of scored items, ranked as
// sentence-transformers ranks retrieval results: higher score first, and
// equal scores in index order (the order a stable sort by score gives).
// Evaluation, search and hard-negative mining all rank with it, so a tie
// breaks the same way everywhere.
package topk

// Hit is an item's index and score.
type Hit[S float32 | float64] struct {
	Index int
	Score S
}

// Before reports whether a ranks before b: higher score, then lower index.
func Before[S float32 | float64](a, b Hit[S]) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Index < b.Index)
}

// Heap keeps the best k hits offered so far. Its zero value is unusable;
// make one with New.
type Heap[S float32 | float64] struct {
	k int
	h []Hit[S] // a binary heap under "ranks after": h[0] is the worst kept
}

// New returns a Heap that keeps k hits (k < 1 keeps none).
func New[S float32 | float64](k int) *Heap[S] {
	return &Heap[S]{k: max(k, 0), h: make([]Hit[S], 0, max(k, 0))}
}

// Len is the number of hits kept.
func (h *Heap[S]) Len() int { return len(h.h) }

// Offer considers item idx with its score. A score below the worst kept is
// rejected with one comparison, the common case in a long scan.
func (h *Heap[S]) Offer(idx int, score S) {
	s := h.h
	x := Hit[S]{idx, score}
	if len(s) < h.k {
		s = append(s, x)
		for i := len(s) - 1; i > 0; {
			p := (i - 1) / 2
			if !Before(s[p], s[i]) { // the parent is already the worse
				break
			}
			s[i], s[p] = s[p], s[i]
			i = p
		}
		h.h = s
		return
	}
	if len(s) == 0 || score < s[0].Score || !Before(x, s[0]) {
		return
	}
	s[0] = x
	siftDown(s)
}

// Sorted returns the kept hits best first and empties the heap.
func (h *Heap[S]) Sorted() []Hit[S] {
	s := h.h
	out := make([]Hit[S], len(s))
	for n := len(s); n > 0; n-- {
		out[n-1] = s[0]
		s[0] = s[n-1]
		s = s[:n-1]
		siftDown(s)
	}
	h.h = s
	return out
}

// Select returns the k best of scores (indexes into it), best first.
func Select[S float32 | float64](scores []S, k int) []Hit[S] {
	h := New[S](min(k, len(scores)))
	for i, s := range scores {
		h.Offer(i, s)
	}
	return h.Sorted()
}

// siftDown restores the heap order after s[0] changed. The root is the
// worst hit kept, so every parent ranks after both of its children.
func siftDown[S float32 | float64](s []Hit[S]) {
	for i := 0; ; {
		l, w := 2*i+1, i
		if l < len(s) && Before(s[w], s[l]) {
			w = l
		}
		if r := l + 1; r < len(s) && Before(s[w], s[r]) {
			w = r
		}
		if w == i {
			break
		}
		s[i], s[w] = s[w], s[i]
		i = w
	}
}
