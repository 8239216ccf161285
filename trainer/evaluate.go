package trainer

// Information-retrieval metrics with the definitions of sentence-transformers'
// InformationRetrievalEvaluator (ST 6.2.0,
// sentence_transformers/sentence_transformer/evaluation/information_retrieval.py,
// compute_all_metrics and compute_metrics). The golden files under
// testdata/golden/evaluator come from that evaluator (tools/golden/gen_evaluator.py).
//
// Scores. ST ranks with cos_sim: F.normalize (x / max(‖x‖, 1e-12), in
// float32), then a float32 matrix product. EvaluateIR normalizes each row the
// same way (the norm is computed in float64 and rounded to float32, then every
// element is divided in float32), accumulates the dot product of the two
// normalized float32 rows in float64 and rounds the result to float32. That
// is (nearly always) the correctly rounded float32 of the score ST
// approximates; torch's float32 matrix product is off from it by a few ulps
// (on the golden embeddings Go and ST scores differ by at most 3e-7), which can
// only change a ranking between documents whose scores are that close.
//
// Ties. ST ranks by the total order (descending score, ascending corpus id),
// with a dedicated path so that torch.topk's arbitrary choice among tied
// scores at the top-k cut does not leak into the result. EvaluateIR uses the
// same order with the corpus index in place of the id: among equal float32
// scores the lower corpus index ranks first (this equals ST's order when the
// ST corpus ids sort like their indexes, e.g. "d000", "d001", ...). The result
// does not depend on chunking or on the number of goroutines.

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/embtune/embtune/topk"
	"github.com/embtune/embtune/vecmath"
)

// IRMetrics maps metric names to values, with keys exactly like
// "accuracy@1", "accuracy@3", "accuracy@5", "accuracy@10", "precision@1", ...,
// "recall@10", "mrr@10", "ndcg@10", "map@100".
type IRMetrics map[string]float64

// IRConfig holds the cut-offs k of each metric family. An empty list leaves
// that family out.
type IRConfig struct {
	AccuracyAtK        []int
	PrecisionRecallAtK []int
	MRRAtK             []int
	NDCGAtK            []int
	MAPAtK             []int
}

// DefaultIRConfig returns ST's defaults: accuracy and precision/recall at
// 1, 3, 5, 10; MRR and NDCG at 10; MAP at 100.
func DefaultIRConfig() IRConfig {
	return IRConfig{
		AccuracyAtK:        []int{1, 3, 5, 10},
		PrecisionRecallAtK: []int{1, 3, 5, 10},
		MRRAtK:             []int{10},
		NDCGAtK:            []int{10},
		MAPAtK:             []int{100},
	}
}

// irFamilies is the display order of the metric families, ST's log order.
var irFamilies = []string{"accuracy", "precision", "recall", "mrr", "ndcg", "map"}

func (c IRConfig) maxK() (int, error) {
	maxK := 0
	for _, ks := range [][]int{c.AccuracyAtK, c.PrecisionRecallAtK, c.MRRAtK, c.NDCGAtK, c.MAPAtK} {
		for _, k := range ks {
			if k < 1 {
				return 0, fmt.Errorf("trainer: IR cut-off k=%d, want k >= 1", k)
			}
			maxK = max(maxK, k)
		}
	}
	if maxK == 0 {
		return 0, errors.New("trainer: IR config has no cut-offs")
	}
	return maxK, nil
}

// EvaluateIR scores every query against every corpus document by cosine
// similarity and computes ST's metrics. relevant[i] lists the corpus indexes
// relevant to query i (binary relevance; repeated indexes count once, as in
// ST's sets). It errors for empty inputs, ragged or zero dimensions,
// non-finite values, a query with no relevant documents and out-of-range
// indexes.
//
// Per query the top max(all k) documents (fewer if the corpus is smaller) are
// ranked by descending score, ties by ascending corpus index; then
//
//	accuracy@k  = 1 if a relevant document is in the top k
//	precision@k = hits in the top k / k
//	recall@k    = hits in the top k / len(relevant)
//	mrr@k       = 1 / rank of the first relevant document in the top k, else 0
//	ndcg@k      = Σ_{hit at 0-based rank i < k} 1/log2(i+2) / Σ_{i < min(len(relevant), k)} 1/log2(i+2)
//	map@k       = Σ_{hit at rank r ≤ k} (hits up to r) / r, divided by min(k, len(relevant))
//
// each averaged over the queries.
func EvaluateIR(queries, corpus [][]float32, relevant [][]int, cfg IRConfig) (IRMetrics, error) {
	ranked, rel, err := rankIR(queries, corpus, relevant, cfg)
	if err != nil {
		return nil, err
	}
	return irMetrics(ranked, rel, len(corpus), cfg), nil
}

// rankIR checks EvaluateIR's input and ranks the corpus for every query;
// rel are the relevance lists sorted and without duplicates.
func rankIR(queries, corpus [][]float32, relevant [][]int, cfg IRConfig) (ranked, rel [][]int, err error) {
	maxK, err := cfg.maxK()
	if err != nil {
		return nil, nil, err
	}
	if len(queries) == 0 {
		return nil, nil, errors.New("trainer: EvaluateIR: no queries")
	}
	if len(corpus) == 0 {
		return nil, nil, errors.New("trainer: EvaluateIR: empty corpus")
	}
	if len(relevant) != len(queries) {
		return nil, nil, fmt.Errorf("trainer: EvaluateIR: %d relevance lists for %d queries", len(relevant), len(queries))
	}
	dim := len(queries[0])
	if dim == 0 {
		return nil, nil, errors.New("trainer: EvaluateIR: zero-dimensional embeddings")
	}
	if err := irCheckRows("query", queries, dim); err != nil {
		return nil, nil, err
	}
	if err := irCheckRows("corpus", corpus, dim); err != nil {
		return nil, nil, err
	}
	rel = make([][]int, len(relevant))
	for i, r := range relevant {
		if len(r) == 0 {
			return nil, nil, fmt.Errorf("trainer: EvaluateIR: query %d has no relevant documents", i)
		}
		for _, j := range r {
			if j < 0 || j >= len(corpus) {
				return nil, nil, fmt.Errorf("trainer: EvaluateIR: query %d: relevant index %d out of range [0,%d)", i, j, len(corpus))
			}
		}
		rel[i] = slices.Compact(slices.Sorted(slices.Values(r)))
	}

	topK := min(maxK, len(corpus))
	return irTopK(queries, corpus, dim, topK), rel, nil
}

func irCheckRows(what string, rows [][]float32, dim int) error {
	for i, row := range rows {
		if len(row) != dim {
			return fmt.Errorf("trainer: EvaluateIR: %s %d has dimension %d, want %d", what, i, len(row), dim)
		}
		for _, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("trainer: EvaluateIR: %s %d has a non-finite value", what, i)
			}
		}
	}
	return nil
}

// irNormalize writes row normalised (vecmath.Normalize, float32 as
// torch.nn.functional.normalize) into dst, widened to float64 for irDot.
func irNormalize(dst []float64, row []float32) {
	norm := max(vecmath.Norm(row), 1e-12)
	for i, v := range row {
		dst[i] = float64(v / norm)
	}
}

// irDot and irDot2x2 compute every score with the same arithmetic (two
// partial sums, over even and odd coordinates, added at the end), so a score
// is bit-identical whichever of them produced it: equal rows tie exactly,
// whatever the blocking.
func irDot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
	}
	if i < len(a) {
		s0 += a[i] * b[i]
	}
	return s0 + s1
}

// irDot2x2 returns irDot(a0,b0), irDot(a0,b1), irDot(a1,b0), irDot(a1,b1),
// loading each element once for two products.
func irDot2x2(a0, a1, b0, b1 []float64) (s00, s01, s10, s11 float64) {
	n := len(a0)
	a1, b0, b1 = a1[:n], b0[:n], b1[:n]
	var e00, e01, e10, e11, o00, o01, o10, o11 float64
	i := 0
	for ; i+2 <= n; i += 2 {
		x0, x1, y0, y1 := a0[i], a1[i], b0[i], b1[i]
		e00 += x0 * y0
		e01 += x0 * y1
		e10 += x1 * y0
		e11 += x1 * y1
		x0, x1, y0, y1 = a0[i+1], a1[i+1], b0[i+1], b1[i+1]
		o00 += x0 * y0
		o01 += x0 * y1
		o10 += x1 * y0
		o11 += x1 * y1
	}
	if i < n {
		x0, x1, y0, y1 := a0[i], a1[i], b0[i], b1[i]
		e00 += x0 * y0
		e01 += x0 * y1
		e10 += x1 * y0
		e11 += x1 * y1
	}
	return e00 + o00, e01 + o01, e10 + o10, e11 + o11
}

const (
	irCorpusChunk = 2048 // corpus rows normalized at a time
	irTile        = 32   // corpus rows kept hot while a worker walks its queries
)

// irTopK returns, per query, the corpus indexes of the topK best documents
// in rank order.
func irTopK(queries, corpus [][]float32, dim, topK int) [][]int {
	nq := len(queries)
	qn := make([]float64, nq*dim)
	for i, q := range queries {
		irNormalize(qn[i*dim:(i+1)*dim], q)
	}
	heaps := make([]*topk.Heap[float32], nq)
	for i := range heaps {
		heaps[i] = topk.New[float32](topK)
	}

	workers := min(runtime.GOMAXPROCS(0), nq)
	per := ((nq+workers-1)/workers + 1) &^ 1 // even, so irDot2x2 pairs up every query
	chunk := make([]float64, min(irCorpusChunk, len(corpus))*dim)
	for start := 0; start < len(corpus); start += irCorpusChunk {
		end := min(start+irCorpusChunk, len(corpus))
		for j := start; j < end; j++ {
			irNormalize(chunk[(j-start)*dim:(j-start+1)*dim], corpus[j])
		}
		row := func(j int) []float64 { return chunk[(j-start)*dim : (j-start+1)*dim] }
		offer := func(qi int, s float64, j int) { heaps[qi].Offer(j, float32(s)) }
		score := func(qlo, qhi int) {
			for t := start; t < end; t += irTile {
				tend := min(t+irTile, end)
				qi := qlo
				for ; qi+2 <= qhi; qi += 2 {
					q0, q1 := qn[qi*dim:(qi+1)*dim], qn[(qi+1)*dim:(qi+2)*dim]
					j := t
					for ; j+2 <= tend; j += 2 {
						s00, s01, s10, s11 := irDot2x2(q0, q1, row(j), row(j+1))
						offer(qi, s00, j)
						offer(qi, s01, j+1)
						offer(qi+1, s10, j)
						offer(qi+1, s11, j+1)
					}
					if j < tend {
						offer(qi, irDot(q0, row(j)), j)
						offer(qi+1, irDot(q1, row(j)), j)
					}
				}
				if qi < qhi {
					q := qn[qi*dim : (qi+1)*dim]
					for j := t; j < tend; j++ {
						offer(qi, irDot(q, row(j)), j)
					}
				}
			}
		}
		if workers == 1 {
			score(0, nq)
			continue
		}
		var wg sync.WaitGroup
		for lo := 0; lo < nq; lo += per {
			hi := min(lo+per, nq)
			wg.Go(func() { score(lo, hi) })
		}
		wg.Wait()
	}

	out := make([][]int, nq)
	for i, h := range heaps {
		best := h.Sorted()
		idx := make([]int, len(best))
		for r, x := range best {
			idx[r] = x.Index
		}
		out[i] = idx
	}
	return out
}

// irMetrics is ST's compute_metrics over ranked lists.
func irMetrics(ranked, rel [][]int, nCorpus int, cfg IRConfig) IRMetrics {
	nq := float64(len(ranked))
	zeros := func(ks []int) map[int]float64 {
		m := make(map[int]float64, len(ks))
		for _, k := range ks {
			m[k] = 0
		}
		return m
	}
	acc, mrr, ndcg, mAP := zeros(cfg.AccuracyAtK), zeros(cfg.MRRAtK), zeros(cfg.NDCGAtK), zeros(cfg.MAPAtK)
	prec, rec := zeros(cfg.PrecisionRecallAtK), zeros(cfg.PrecisionRecallAtK)
	isRel := make([]bool, nCorpus)
	for qi, top := range ranked {
		for _, j := range rel[qi] {
			isRel[j] = true
		}
		nRel := len(rel[qi])
		hits := make([]bool, len(top))
		for r, j := range top {
			hits[r] = isRel[j]
		}
		for _, j := range rel[qi] {
			isRel[j] = false
		}
		at := func(k int) []bool { return hits[:min(k, len(hits))] }

		for _, k := range cfg.AccuracyAtK {
			if slices.Contains(at(k), true) {
				acc[k]++
			}
		}
		for _, k := range cfg.PrecisionRecallAtK {
			n := 0
			for _, h := range at(k) {
				if h {
					n++
				}
			}
			prec[k] += float64(n) / float64(k)
			rec[k] += float64(n) / float64(nRel)
		}
		for _, k := range cfg.MRRAtK {
			if r := slices.Index(at(k), true); r >= 0 {
				mrr[k] += 1 / float64(r+1)
			}
		}
		for _, k := range cfg.NDCGAtK {
			var dcg, idcg float64
			for r, h := range at(k) {
				if h {
					dcg += 1 / math.Log2(float64(r+2))
				}
			}
			for r := range min(nRel, k) {
				idcg += 1 / math.Log2(float64(r+2))
			}
			ndcg[k] += dcg / idcg
		}
		for _, k := range cfg.MAPAtK {
			n := 0
			var sum float64
			for r, h := range at(k) {
				if h {
					n++
					sum += float64(n) / float64(r+1)
				}
			}
			mAP[k] += sum / float64(min(k, nRel))
		}
	}

	m := IRMetrics{}
	for name, vals := range map[string]map[int]float64{
		"accuracy": acc, "precision": prec, "recall": rec, "mrr": mrr, "ndcg": ndcg, "map": mAP,
	} {
		for k, v := range vals {
			m[name+"@"+strconv.Itoa(k)] = v / nq
		}
	}
	return m
}

// irKeyRank orders metric keys: family in irFamilies order, then k; keys of
// any other shape come last.
func irKeyRank(key string) (family, k int, ok bool) {
	name, ks, found := strings.Cut(key, "@")
	if !found {
		return 0, 0, false
	}
	f := slices.Index(irFamilies, name)
	n, err := strconv.Atoi(ks)
	if f < 0 || err != nil {
		return 0, 0, false
	}
	return f, n, true
}

func irKeyLess(a, b string) bool {
	fa, ka, oka := irKeyRank(a)
	fb, kb, okb := irKeyRank(b)
	switch {
	case oka && okb:
		if fa != fb {
			return fa < fb
		}
		if ka != kb {
			return ka < kb
		}
		return a < b
	case oka != okb:
		return oka
	}
	return a < b
}

// Keys returns the metric names in display order: accuracy, precision,
// recall, mrr, ndcg, map, each by ascending k; unrecognized keys last,
// alphabetically.
func (m IRMetrics) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return irKeyLess(keys[i], keys[j]) })
	return keys
}

// Sub returns m - base for the keys both have.
func (m IRMetrics) Sub(base IRMetrics) IRMetrics {
	d := IRMetrics{}
	for k, v := range m {
		if b, ok := base[k]; ok {
			d[k] = v - b
		}
	}
	return d
}
