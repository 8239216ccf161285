package stats

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The goldens come from scipy 1.17.1 and numpy (tools/golden/gen_stats.py).
const goldenDir = "../testdata/golden/stats/"

func readGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(goldenDir + name)
	require.NoError(t, err, "golden file missing: run tools/golden/run.sh stats")
	require.NoError(t, json.Unmarshal(b, v))
}

func TestWilcoxonMatchesScipy(t *testing.T) {
	var g struct {
		Scipy string `json:"scipy_version"`
		Cases []struct {
			Name      string
			X, Y      []float64
			Statistic float64
			PValue    *float64
		}
	}
	readGolden(t, "wilcoxon.json", &g)
	require.Equal(t, "1.17.1", g.Scipy)
	require.NotEmpty(t, g.Cases)
	methods := map[string]int{}
	worst := map[string]float64{}
	for _, c := range g.Cases {
		d := make([]float64, len(c.X))
		for i := range d {
			d[i] = c.X[i] - c.Y[i] // scipy's d = x - y
		}
		got, err := Wilcoxon(d)
		require.NoError(t, err, c.Name)
		methods[got.Method]++
		assert.Equal(t, c.Statistic, got.Statistic, c.Name)
		if c.PValue == nil {
			assert.True(t, math.IsNaN(got.PValue), "%s: scipy's p is NaN, got %v", c.Name, got.PValue)
			continue
		}
		diff := math.Abs(got.PValue - *c.PValue)
		worst[got.Method] = max(worst[got.Method], diff)
		assert.InDelta(t, *c.PValue, got.PValue, 1e-9, "%s (%s)", c.Name, got.Method)
	}
	for _, m := range []string{MethodExact, MethodPermutation, MethodAsymptotic} {
		assert.Positive(t, methods[m], "no golden case reaches method %s", m)
	}
	// The exact and permutation p-values are sums of the same binary
	// fractions in the same order as scipy's: equal to the bit.
	assert.Zero(t, worst[MethodExact], "exact p-values differ from scipy's")
	assert.Zero(t, worst[MethodPermutation], "permutation p-values differ from scipy's")
	assert.Less(t, worst[MethodAsymptotic], 1e-14, "normal-approximation p-values: erfc differs from Cephes' by ulps at most")
}

func TestWilcoxonMethodChoice(t *testing.T) {
	seq := func(n int, f func(i int) float64) []float64 {
		d := make([]float64, n)
		for i := range d {
			d[i] = f(i)
		}
		return d
	}
	distinct := func(i int) float64 { return float64(i+1) * math.Pow(-1, float64(i%3)) }
	for _, c := range []struct {
		d    []float64
		want string
	}{
		{seq(50, distinct), MethodExact},
		{seq(51, distinct), MethodAsymptotic},
		{seq(13, func(i int) float64 { return float64(i / 2) }), MethodPermutation}, // zeros and ties
		{seq(14, func(i int) float64 { return float64(i/2 + 1) }), MethodAsymptotic},
		{append(seq(12, distinct), 0), MethodPermutation},
	} {
		got, err := Wilcoxon(c.d)
		require.NoError(t, err)
		assert.Equal(t, c.want, got.Method, "n=%d", len(c.d))
	}
}

func TestWilcoxonBadInput(t *testing.T) {
	for _, d := range [][]float64{nil, {1, math.NaN()}, {math.Inf(-1)}} {
		_, err := Wilcoxon(d)
		assert.Error(t, err, "%v", d)
	}
}

func TestSplitMix64TestVector(t *testing.T) {
	var g struct {
		SplitMix64 struct {
			Seed    uint64
			Outputs []uint64
		}
	}
	readGolden(t, "bootstrap.json", &g)
	// The reference implementation's outputs for seed 1234567 (Vigna's
	// splitmix64.c), as the golden generator's own check also records them.
	require.Equal(t, []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
		16408922859458223821}, g.SplitMix64.Outputs)
	r := NewResampler(g.SplitMix64.Seed)
	for _, want := range g.SplitMix64.Outputs {
		assert.Equal(t, want, r.Uint64())
	}
}

func TestPairedBootstrapMatchesNumpy(t *testing.T) {
	var g struct {
		Cases []struct {
			Name            string
			D               []float64
			Seed            uint64
			Resamples       int
			Level           float64
			Mean, Low, High float64
		}
	}
	readGolden(t, "bootstrap.json", &g)
	require.NotEmpty(t, g.Cases)
	for _, c := range g.Cases {
		got, err := PairedBootstrap(c.D, Bootstrap{Resamples: c.Resamples, Seed: c.Seed, Level: c.Level})
		require.NoError(t, err, c.Name)
		// Bit-equal, so every printed digit agrees.
		assert.Equal(t, c.Mean, got.Mean, c.Name)
		assert.Equal(t, c.Low, got.Low, c.Name)
		assert.Equal(t, c.High, got.High, c.Name)
		assert.Equal(t, strconv.FormatFloat(c.Low, 'f', 4, 64), strconv.FormatFloat(got.Low, 'f', 4, 64), c.Name)
		assert.Equal(t, c.Resamples, got.Resamples)
		assert.Equal(t, c.Seed, got.Seed)
	}
}

func TestPairedBootstrapBadInput(t *testing.T) {
	for _, c := range []struct {
		d []float64
		b Bootstrap
	}{
		{nil, Bootstrap{}},
		{[]float64{1, math.NaN()}, Bootstrap{}},
		{[]float64{1}, Bootstrap{Resamples: 1}},
		{[]float64{1}, Bootstrap{Level: 1}},
		{[]float64{1}, Bootstrap{Level: -0.5}},
	} {
		_, err := PairedBootstrap(c.d, c.b)
		assert.Error(t, err, "%+v", c)
	}
	// Defaults: 10000 resamples at 95%.
	iv, err := PairedBootstrap([]float64{0.1, 0, -0.05, 0.2, 0}, Bootstrap{Seed: 1})
	require.NoError(t, err)
	assert.Equal(t, DefaultResamples, iv.Resamples)
	assert.Equal(t, 0.95, iv.Level)
	assert.LessOrEqual(t, iv.Low, iv.Mean)
	assert.GreaterOrEqual(t, iv.High, iv.Mean)
}

func TestPairwiseSumSmall(t *testing.T) {
	// The order only matters for rounding: on integers every order agrees.
	for n := range 300 {
		x := make([]float64, n)
		want := 0.0
		for i := range x {
			x[i] = float64(i%7 + 1)
			want += x[i]
		}
		assert.Equal(t, want, pairwiseSum(x), "n=%d", n)
	}
}
