package trainer

import (
	"context"
	"fmt"

	"github.com/embtune/embtune/dataset"
	"github.com/embtune/embtune/embedding"
	"github.com/embtune/embtune/topk"
	"github.com/embtune/embtune/vecmath"
)

// MineHardNegatives returns pairs with n hard negatives each: for every
// anchor, the other pairs' positives that m ranks highest by cosine
// similarity. It mirrors sentence-transformers' util.mine_hard_negatives
// with its corpus left to the dataset's positives, sampling_strategy "top"
// and as_triplets=False (one row with columns negative_1…negative_n).
//
// A candidate equal to one of the anchor's own positives is never a
// negative. margin > 0 also skips candidates scoring above the positive's
// score minus margin (absolute_margin): near-ties with the positive are more
// often unlabelled positives than negatives. As in sentence-transformers,
// pairs left with fewer than n candidates are dropped; dropped reports how
// many. Only the top candidates are looked at, as there (range_max).
//
// Only the given pairs are searched, so mining a training split never looks
// at held-out answers.
func MineHardNegatives(ctx context.Context, m embedding.Encoder, pairs []dataset.Pair, n int, margin float64) (mined []dataset.Pair, dropped int, err error) {
	if n < 1 {
		return nil, 0, fmt.Errorf("hard negatives: need at least 1 per pair, got %d", n)
	}
	for i, p := range pairs {
		if len(p.Negatives) > 0 {
			return nil, 0, fmt.Errorf("hard negatives: pair %d already has negatives; mine only plain pairs", i)
		}
	}
	var corpus []string
	index := map[string]int{}
	for _, p := range pairs {
		if _, ok := index[p.Positive]; !ok {
			index[p.Positive] = len(corpus)
			corpus = append(corpus, p.Positive)
		}
	}
	// Every positive of an anchor, when the data repeats an anchor.
	own := map[string]map[int]bool{}
	anchors := make([]string, 0, len(pairs))
	maxPositives := 0
	for _, p := range pairs {
		if own[p.Anchor] == nil {
			own[p.Anchor] = map[int]bool{}
		}
		own[p.Anchor][index[p.Positive]] = true
		maxPositives = max(maxPositives, len(own[p.Anchor]))
		anchors = append(anchors, p.Anchor)
	}
	// sentence-transformers looks at the top range_max + max_positives
	// candidates only, range_max being n + max_positives, or 10n +
	// max_positives with a margin.
	window := n + 2*maxPositives
	if margin > 0 {
		window = 10*n + 2*maxPositives
	}
	// encode_query and encode_document, as util.mine_hard_negatives calls them.
	q, err := embedding.Queries(ctx, m, anchors, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("hard negatives: anchors: %w", err)
	}
	c, err := embedding.Documents(ctx, m, corpus, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("hard negatives: positives: %w", err)
	}
	scores := make([]float64, len(corpus))
	for i, p := range pairs {
		for d := range corpus {
			scores[d] = vecmath.Cosine(q[i], c[d])
		}
		positive := scores[index[p.Positive]]
		// Score descending, then corpus order: deterministic under ties.
		var negs []string
		for _, h := range topk.Select(scores, window) {
			if len(negs) == n {
				break
			}
			if own[p.Anchor][h.Index] || (margin > 0 && h.Score > positive-margin) {
				continue
			}
			negs = append(negs, corpus[h.Index])
		}
		if len(negs) < n {
			dropped++
			continue
		}
		p.Negatives = negs
		mined = append(mined, p)
	}
	return mined, dropped, nil
}
