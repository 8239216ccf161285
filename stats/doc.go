// Package stats holds the paired statistics embtune reports when it compares
// two models question by question: a bootstrap confidence interval of the
// mean paired difference, and the two-sided Wilcoxon signed-rank test.
//
// Both are written to equal a named reference exactly, so that a report can
// be checked by anyone with numpy and scipy:
//
//   - Wilcoxon is scipy.stats.wilcoxon(d) with scipy 1.17.1's defaults
//     (zero_method="wilcox", correction=False, alternative="two-sided",
//     method="auto").
//   - PairedBootstrap draws its resampling indices from SplitMix64 (see
//     Resampler) and reads the interval off the resampled means with
//     numpy.quantile's default rule (method="linear").
//
// The golden files under testdata/golden/stats come from scipy and numpy
// (tools/golden/gen_stats.py). The package is pure Go.
package stats
