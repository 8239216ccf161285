package stats

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Resampler is the random stream of PairedBootstrap: SplitMix64 (Steele,
// Lea and Flood, 2014) with Lemire's unbiased multiply-and-reject bounded
// integers. Both are a few lines in any language, so a bootstrap interval
// can be recomputed outside Go from its seed:
//
//	state += 0x9e3779b97f4a7c15
//	z = state
//	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
//	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
//	return z ^ (z >> 31)                       // Uint64, all mod 2^64
//
//	IntN(n): m = Uint64() * n as a 128-bit product
//	         if low64(m) < n: t = (2^64 - n) mod n; while low64(m) < t: m = Uint64() * n
//	         return high64(m)
type Resampler struct{ state uint64 }

// NewResampler returns the stream for seed (the first value is the
// SplitMix64 output after one increment of seed).
func NewResampler(seed uint64) *Resampler { return &Resampler{state: seed} }

// Uint64 returns the next SplitMix64 value.
func (r *Resampler) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// IntN returns a uniform integer in [0, n), n > 0 (Lemire, "Fast random
// integer generation in an interval", 2019).
func (r *Resampler) IntN(n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		t := -n % n
		for lo < t {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// Bootstrap configures PairedBootstrap.
type Bootstrap struct {
	// Resamples is the number of bootstrap samples (DefaultResamples if 0).
	Resamples int
	// Seed seeds the Resampler.
	Seed uint64
	// Level is the two-sided confidence level (0.95 if 0).
	Level float64
}

// DefaultResamples is the number of bootstrap samples a report draws: the
// interval's ends then move by well under 0.001 NDCG between seeds.
const DefaultResamples = 10000

// Interval is a bootstrap confidence interval of a mean paired difference.
type Interval struct {
	// Mean is the mean of the differences (the observed gain).
	Mean float64 `json:"mean"`
	// Low and High are the interval's ends.
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// Level, Resamples and Seed reproduce it.
	Level     float64 `json:"level"`
	Resamples int     `json:"resamples"`
	Seed      uint64  `json:"seed"`
}

// PairedBootstrap is the percentile bootstrap interval of the mean of d,
// the per-question differences of two models' scores (tuned - base).
// Resampling questions with replacement keeps each question's two scores
// together, so the interval reflects the pairing.
//
// Exactly, with n = len(d) and a Resampler seeded with b.Seed: for each of
// the b.Resamples samples in turn, draw n indexes i_1..i_n by IntN(n), and
// the sample's mean is ((d[i_1] + d[i_2]) + ... + d[i_n]) / n (float64,
// added left to right). The interval is numpy.quantile(means, [a, 1-a])
// with the default method="linear" and a = (1 - b.Level) / 2: with the
// means sorted, h = (R-1)·q, j = floor(h), g = h - j, the end is
// m[j] + (m[j+1]-m[j])·g, or m[j+1] - (m[j+1]-m[j])·(1-g) when g ≥ 0.5.
//
// It errors for an empty or non-finite d and a level outside (0, 1).
func PairedBootstrap(d []float64, b Bootstrap) (Interval, error) {
	if len(d) == 0 {
		return Interval{}, errors.New("stats: bootstrap of no differences")
	}
	for i, v := range d {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Interval{}, fmt.Errorf("stats: bootstrap: difference %d is %v", i, v)
		}
	}
	if b.Resamples == 0 {
		b.Resamples = DefaultResamples
	}
	if b.Resamples < 2 {
		return Interval{}, fmt.Errorf("stats: bootstrap needs at least 2 resamples, got %d", b.Resamples)
	}
	if b.Level == 0 {
		b.Level = 0.95
	}
	if !(b.Level > 0 && b.Level < 1) {
		return Interval{}, fmt.Errorf("stats: confidence level %v is not in (0, 1)", b.Level)
	}
	n := len(d)
	r := NewResampler(b.Seed)
	means := make([]float64, b.Resamples)
	for k := range means {
		s := 0.0
		for range n {
			s += d[r.IntN(uint64(n))]
		}
		means[k] = s / float64(n)
	}
	slices.Sort(means)
	a := (1 - b.Level) / 2
	return Interval{Mean: mean(d), Low: quantileSorted(means, a), High: quantileSorted(means, 1-a),
		Level: b.Level, Resamples: b.Resamples, Seed: b.Seed}, nil
}

// mean is the arithmetic mean as numpy.mean computes it (pairwise sum / n).
func mean(x []float64) float64 { return pairwiseSum(x) / float64(len(x)) }

// quantileSorted is numpy.quantile(x, q, method="linear") of sorted x.
func quantileSorted(x []float64, q float64) float64 {
	n := len(x)
	h := float64(n-1) * q
	j := math.Floor(h)
	if h >= float64(n-1) {
		return x[n-1]
	}
	if h < 0 {
		return x[0]
	}
	lo, hi := x[int(j)], x[int(j)+1]
	g := h - j
	diff := hi - lo
	if g >= 0.5 {
		return hi - diff*(1-g)
	}
	return lo + diff*g
}
