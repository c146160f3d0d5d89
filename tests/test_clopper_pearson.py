"""`clopper_pearson` and `clopper_pearson_lower` go through `scipy.stats.binomtest`; they must give the
textbook Clopper-Pearson bounds (beta quantiles, what the hand-written versions computed) on a grid."""

from __future__ import annotations

import pytest

from trainprove_core.evidence import clopper_pearson, clopper_pearson_lower

pytest.importorskip("scipy")

GRID = [
    (k, n)
    for n in (*range(1, 41), 97, 500, 1600, 5000)
    for k in sorted({0, 1, 2, n // 3, n // 2, n - 1, n} & set(range(n + 1)))
]
CONFIDENCES = (0.8, 0.95, 0.99, 0.999)


def beta_bounds(k: int, n: int, confidence: float) -> tuple[float, float, float]:
    """The definition: two-sided lower and upper bounds and the one-sided lower bound, as beta quantiles."""
    from scipy import stats

    tail = (1.0 - confidence) / 2.0
    lo = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - tail, k + 1, n - k))
    one_sided = 0.0 if k == 0 else float(stats.beta.ppf(1.0 - confidence, k, n - k + 1))
    return lo, hi, one_sided


def test_binomtest_bounds_equal_the_beta_quantiles_on_a_grid():
    worst = 0.0
    for confidence in CONFIDENCES:
        for k, n in GRID:
            lo, hi, one_sided = beta_bounds(k, n, confidence)
            got_lo, got_hi = clopper_pearson(k, n, confidence)
            got_one = clopper_pearson_lower(k, n, confidence)
            worst = max(worst, abs(got_lo - lo), abs(got_hi - hi), abs(got_one - one_sided))
    assert worst < 1e-12, worst


def test_edges():
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    assert clopper_pearson_lower(0, 0) == 0.0
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and 0.0 < hi < 1.0
    lo, hi = clopper_pearson(10, 10)
    assert hi == 1.0 and 0.0 < lo < 1.0
    assert clopper_pearson_lower(0, 10) == 0.0
