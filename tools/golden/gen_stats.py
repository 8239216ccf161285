"""Golden files for package stats from scipy and numpy.

Run with the golden venv:

  third_party/golden-venv/bin/python tools/golden/gen_stats.py

It writes testdata/golden/stats/wilcoxon.json and bootstrap.json.

wilcoxon.json: cases {name, x, y, statistic, pvalue} of
scipy.stats.wilcoxon(x, y) with every default (zero_method="wilcox",
correction=False, alternative="two-sided", method="auto"), chosen to reach each
of the methods "auto" picks: the exact null distribution (no ties, no zeros,
n <= 50), the exact permutation test over all sign flips (ties or zeros,
n <= 13) and the normal approximation (ties or zeros with n > 13, or n > 50),
on continuous differences and on per-question NDCG@10 values (many ties and
zeros, as real reports have).

bootstrap.json: cases {name, d, seed, resamples, level, mean, low, high} of the
paired bootstrap that stats.PairedBootstrap documents. The resampling indices
come from SplitMix64 with Lemire's bounded integers, written again here from
their published definitions; each resample's mean is the left-to-right float64
sum over its indices divided by n; the interval is numpy.quantile(means,
[a, 1 - a]) (method="linear", numpy's default) with a = (1 - level) / 2 and mean
is numpy.mean(d). splitmix64 holds the first outputs for seed 1234567, the
reference implementation's test vector, as a check on the generator itself.
"""

import json
import math
from pathlib import Path

import numpy as np
import scipy
from scipy import stats

OUT = Path(__file__).resolve().parents[2] / "testdata" / "golden" / "stats"
M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def intn(self, n):
        m = self.next() * n
        lo = m & M64
        if lo < n:
            t = ((1 << 64) - n) % n
            while lo < t:
                m = self.next() * n
                lo = m & M64
        return m >> 64


def bootstrap(d, seed, resamples, level):
    rng = SplitMix64(seed)
    n = len(d)
    means = np.empty(resamples)
    for k in range(resamples):
        s = 0.0
        for _ in range(n):
            s += d[rng.intn(n)]
        means[k] = s / n
    a = (1 - level) / 2
    low, high = np.quantile(means, [a, 1 - a])
    return float(np.mean(np.asarray(d))), float(low), float(high)


NDCG_AT_RANK = [1 / math.log2(r + 1) for r in range(1, 11)] + [0.0]  # ranks 1..10, then a miss


def ndcg_scores(rng, n, shift):
    """Per-question NDCG@10 of a base and a tuned model: each question's
    relevant answer at a random rank, the tuned rank moved by shift on average."""
    base_rank = np.minimum(rng.geometric(0.45, n), 11)
    tuned_rank = np.clip(base_rank - rng.integers(-1, 2, n) - (rng.random(n) < shift), 1, 11)
    return [NDCG_AT_RANK[r - 1] for r in tuned_rank], [NDCG_AT_RANK[r - 1] for r in base_rank]


def wilcoxon_cases():
    rng = np.random.default_rng(20261207)
    cases = []

    def add(name, x, y):
        x = [float(v) for v in x]
        y = [float(v) for v in y]
        with np.errstate(invalid="ignore"):  # all-zero differences: scipy's z is 0/0
            res = stats.wilcoxon(x, y)
        cases.append({"name": name, "x": x, "y": y,
                      "statistic": float(res.statistic),
                      # null where scipy's p-value is NaN (JSON has no NaN)
                      "pvalue": None if math.isnan(res.pvalue) else float(res.pvalue)})

    for n in (1, 2, 5, 6, 9, 13, 14, 20, 25, 26, 35, 50):
        x = rng.normal(0.6, 0.2, n)
        y = x - rng.normal(0.02, 0.1, n)
        add(f"continuous n={n}", x, y)
    for n in (51, 60, 120):
        x = rng.normal(0.6, 0.2, n)
        add(f"continuous n={n}", x, x - rng.normal(0.01, 0.1, n))
    add("exact, all positive n=8", [1 + i for i in range(8)], [0.5 * i for i in range(8)])
    add("exact, all negative n=7", [0.0] * 7, [0.1 * (i + 1) + 0.01 * i * i for i in range(7)])
    add("ties in the middle n=30", [float(i) for i in range(30)], [float(i) - (i - 3.5) / 7 for i in range(30)])
    for n in (5, 6, 8, 10, 13):
        x, y = ndcg_scores(rng, n, 0.3)
        add(f"ndcg permutation n={n}", x, y)
    add("permutation, one zero n=6", [1, 2, 3, 4, 5, 6], [1, 1.5, 2.2, 3.9, 4.1, 5.3])
    add("permutation, ties n=7", [1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3.5, 4.5, 7.5, 7.5])
    add("permutation, all zero n=6", [0.5] * 6, [0.5] * 6)
    for n in (14, 24, 35, 36, 50, 120):
        for shift in (0.0, 0.4):
            x, y = ndcg_scores(rng, n, shift)
            add(f"ndcg asymptotic n={n} shift={shift}", x, y)
    add("asymptotic, worse n=35", *reversed(ndcg_scores(rng, 35, 0.5)))
    add("asymptotic, all zero n=20", [0.25] * 20, [0.25] * 20)
    return cases


def bootstrap_cases():
    rng = np.random.default_rng(42)
    cases = []

    def add(name, d, seed, resamples, level=0.95):
        d = [float(v) for v in d]
        mean, low, high = bootstrap(d, seed, resamples, level)
        cases.append({"name": name, "d": d, "seed": seed, "resamples": resamples, "level": level,
                      "mean": mean, "low": low, "high": high})

    for n, seed, resamples in ((5, 42, 10000), (35, 42, 10000), (35, 7, 2000), (120, 42, 10000), (173, 0, 1000)):
        x, y = ndcg_scores(rng, n, 0.3)
        add(f"ndcg n={n} seed={seed}", np.subtract(x, y), seed, resamples)
    add("continuous n=50", rng.normal(0.01, 0.05, 50), (1 << 64) - 1, 5000)
    add("continuous n=50 level=0.9", rng.normal(0.01, 0.05, 50), 123456789, 5000, 0.9)
    add("one question", [0.25], 42, 1000)
    add("n=3, 3 does not divide 2^64", [0.1, -0.2, 0.3], 99, 999)
    return cases


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ref = SplitMix64(1234567)
    header = {"scipy_version": scipy.__version__, "numpy_version": np.__version__}
    (OUT / "wilcoxon.json").write_text(json.dumps({**header, "cases": wilcoxon_cases()}, indent=1) + "\n")
    (OUT / "bootstrap.json").write_text(json.dumps(
        {**header, "splitmix64": {"seed": 1234567, "outputs": [ref.next() for _ in range(5)]},
         "cases": bootstrap_cases()}, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
