package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Wilcoxon methods, as scipy names them.
const (
	MethodExact       = "exact"
	MethodPermutation = "permutation"
	MethodAsymptotic  = "asymptotic"
)

// WilcoxonResult is a two-sided Wilcoxon signed-rank test.
type WilcoxonResult struct {
	// Statistic is min(R+, R-), the smaller of the rank sums of the
	// positive and the negative differences (scipy's statistic).
	Statistic float64 `json:"statistic"`
	// PValue is two-sided. It is NaN where scipy's is: with the normal
	// approximation when every difference is zero.
	PValue float64 `json:"p_value"`
	// Method is how PValue was computed: exact, permutation or asymptotic.
	Method string `json:"method"`
	// N is the number of nonzero differences, the ones that are ranked.
	N int `json:"n"`
}

// Wilcoxon is scipy.stats.wilcoxon(d) in scipy 1.17.1, the two-sided
// signed-rank test that the differences d (e.g. tuned - base per question)
// are symmetric about zero, with scipy's defaults:
//
//   - zero_method="wilcox": zero differences are dropped before ranking
//     (they still count towards len(d) in the method choice below);
//   - the absolute nonzero differences get average ranks (ties share the
//     mean of their ranks); R+ and R- are the rank sums of the positive
//     and negative differences;
//   - method="auto": with len(d) ≤ 50 and neither ties nor zeros, the exact
//     null distribution of R+ (p = 2·min(P(R+ ≥ r), P(R+ ≤ r)), at most 1);
//     with ties or zeros and len(d) ≤ 13, the exact permutation test over
//     all 2^len(d) sign flips (scipy's permutation_test, its null values
//     compared with a relative tolerance of 100 machine epsilons); otherwise
//     the normal approximation z = (R+ - n(n+1)/4) / σ with
//     σ² = (n(n+1)(2n+1) - Σ(t³-t)/2) / 24 over the tie groups t of the n
//     nonzero differences, p = 2·Φ(-|z|);
//   - correction=False: no continuity correction.
//
// It errors for an empty d and for non-finite values (scipy returns NaN or
// propagates them).
func Wilcoxon(d []float64) (WilcoxonResult, error) {
	if len(d) == 0 {
		return WilcoxonResult{}, errors.New("stats: wilcoxon of no differences")
	}
	for i, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return WilcoxonResult{}, fmt.Errorf("stats: wilcoxon: difference %d is %v", i, v)
		}
	}
	r := signedRanks(d)
	res := WilcoxonResult{Statistic: math.Min(r.plus, r.minus), N: r.count}
	switch {
	case len(d) <= 50 && !r.ties && r.zeros == 0:
		res.Method, res.PValue = MethodExact, exactPValue(r.count, r.plus)
	case len(d) <= 13:
		res.Method, res.PValue = MethodPermutation, permutationPValue(d, r)
	default:
		res.Method = MethodAsymptotic
		n := float64(r.count)
		mn := n * (n + 1) * 0.25
		se := math.Sqrt((n*(n+1)*(2*n+1) - r.tieSum/2) / 24)
		res.PValue = 2 * ndtr(-math.Abs((r.plus-mn)/se))
	}
	return res, nil
}

// ranks holds what the test needs from d's signed ranks.
type ranks struct {
	rank        []float64 // average rank of |d[i]| among the nonzero differences; 0 for zeros
	plus, minus float64   // rank sums of the positive and the negative differences
	count       int       // nonzero differences
	zeros       int
	ties        bool    // two nonzero |d| are equal
	tieSum      float64 // Σ (t³ - t) over the groups of equal nonzero |d|
}

func signedRanks(d []float64) ranks {
	r := ranks{rank: make([]float64, len(d))}
	idx := make([]int, 0, len(d))
	for i, v := range d {
		if v == 0 {
			r.zeros++
			continue
		}
		idx = append(idx, i)
	}
	r.count = len(idx)
	sort.SliceStable(idx, func(a, b int) bool { return math.Abs(d[idx[a]]) < math.Abs(d[idx[b]]) })
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && math.Abs(d[idx[end]]) == math.Abs(d[idx[start]]) {
			end++
		}
		t := float64(end - start)
		avg := float64(start+1) + (t-1)/2
		for _, i := range idx[start:end] {
			r.rank[i] = avg
		}
		if end-start > 1 {
			r.ties = true
		}
		r.tieSum += t*t*t - t
		start = end
	}
	r.plus, r.minus = rankSums(d, r.rank)
	return r
}

// rankSums sums the ranks of the positive and the negative d in index
// order, as scipy's np.sum((d > 0) * r) does (zeros contribute 0 terms).
func rankSums(d, rank []float64) (plus, minus float64) {
	p := make([]float64, len(d))
	m := make([]float64, len(d))
	for i, v := range d {
		if v > 0 {
			p[i] = rank[i]
		} else if v < 0 {
			m[i] = rank[i]
		}
	}
	return pairwiseSum(p), pairwiseSum(m)
}

// wilcoxonPMF is the exact null distribution of R+ for n untied nonzero
// differences, P(R+ = r) for r = 0..n(n+1)/2, built as scipy's
// _get_wilcoxon_distr builds it (adding one rank at a time, halving).
func wilcoxonPMF(n int) []float64 {
	c := []float64{1}
	for k := 1; k <= n; k++ {
		next := make([]float64, k*(k+1)/2+1)
		m := len(c)
		for i, v := range c {
			next[i] = v * 0.5
		}
		off := len(next) - m
		for i, v := range c {
			next[off+i] += v * 0.5
		}
		c = next
	}
	return c
}

// exactPValue is scipy's two-sided exact p-value for R+ = plus:
// 2·min(sf(floor(plus)), cdf(ceil(plus))), clipped to 1, with scipy's
// choice of summing the near tail (or one minus the far one) about the
// mean n(n+1)/4.
func exactPValue(n int, plus float64) float64 {
	pmf := wilcoxonPMF(n)
	mn := float64(n) * float64(n+1) / 4
	cdf := func(k int) float64 { // P(R+ ≤ k)
		if float64(k) <= mn {
			return pairwiseSum(pmf[:max(0, k+1)])
		}
		return 1 - pairwiseSum(pmf[min(len(pmf), k+1):])
	}
	sf := func(k int) float64 { // P(R+ ≥ k)
		if float64(k) <= mn {
			return pairwiseSum(pmf[max(0, k):])
		}
		return 1 - pairwiseSum(pmf[:min(len(pmf), k)])
	}
	p := 2 * math.Min(sf(int(math.Floor(plus))), cdf(int(math.Ceil(plus))))
	return math.Min(math.Max(p, 0), 1)
}

// permutationPValue is scipy.stats.permutation_test's exact two-sided
// p-value of R+ over all 2^len(d) sign flips of d (zeros included, as scipy
// enumerates them), with its tolerance: a null value counts as ≤ (≥) the
// observed r when it is ≤ r + γ (≥ r - γ), γ = |100·ε·r|.
func permutationPValue(d []float64, r ranks) float64 {
	n := len(d)
	obs := r.plus
	gamma := math.Abs(100 * 0x1p-52 * obs)
	total := 1 << n
	var less, greater int
	for mask := range total {
		// Bit i set flips d[i]; R+ is then the rank sum of the positive values.
		p := make([]float64, n)
		for i, v := range d {
			if mask&(1<<i) != 0 {
				v = -v
			}
			if v > 0 {
				p[i] = r.rank[i]
			}
		}
		s := pairwiseSum(p)
		if s <= obs+gamma {
			less++
		}
		if s >= obs-gamma {
			greater++
		}
	}
	p := 2 * math.Min(float64(less)/float64(total), float64(greater)/float64(total))
	return math.Min(math.Max(p, 0), 1)
}

// ndtr is the standard normal CDF as Cephes (scipy.special.ndtr) computes
// it: 0.5 + 0.5·erf(x/√2) near zero, the erfc tail otherwise.
func ndtr(a float64) float64 {
	x := a * (math.Sqrt2 / 2)
	z := math.Abs(x)
	var y float64
	if z < math.Sqrt2/2 {
		y = 0.5 + 0.5*math.Erf(x)
	} else {
		y = 0.5 * math.Erfc(z)
		if x > 0 {
			y = 1 - y
		}
	}
	return y
}
