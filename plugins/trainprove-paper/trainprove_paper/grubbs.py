"""The one-sided Grubbs outlier test that TrainProVe uses, and the standard-deviation floor.

The sample is n reference values (e.g. the shadow model's per-batch accuracies); the question is whether
one extra value (the suspect's) is an outlier on one side. The statistic for the low side is
G = (mean - x) / s, compared with the textbook one-sided critical value

    G_crit = (n - 1) / sqrt(n) * sqrt(t^2 / (n - 2 + t^2)),   t = upper alpha/n quantile of Student t(n - 2).

The paper's released code takes the upper alpha/(2n) quantile instead (the two-sided form), which makes
the test one-sided at alpha/2: `paper_compat=True` reproduces it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


@functools.lru_cache(maxsize=1024)
def grubbs_critical(n: int, alpha: float, paper_compat: bool = False) -> float:
    """The critical value of the one-sided Grubbs test for a sample of size n at level alpha."""
    from scipy import stats  # here: its import costs a second of a cached audit's start

    if n < 3:
        raise ValueError(f"the Grubbs test needs at least 3 values, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    q = alpha / (2 * n) if paper_compat else alpha / n
    t = stats.t.isf(q, n - 2)
    return (n - 1) / math.sqrt(n) * math.sqrt(t * t / (n - 2 + t * t))


def grubbs_p_value(g: float, n: int, paper_compat: bool = False) -> float:
    """The p-value of a one-sided Grubbs statistic g (Bonferroni form, the inverse of `grubbs_critical`)."""
    from scipy import stats  # here: its import costs a second of a cached audit's start

    if g <= 0:
        return 1.0
    bound = (n - 1) / math.sqrt(n)
    if g >= bound:
        return 0.0
    t = math.sqrt(n * (n - 2) * g * g / ((n - 1) ** 2 - n * g * g))
    factor = 2 * n if paper_compat else n
    return float(min(1.0, factor * stats.t.sf(t, n - 2)))


@dataclass(frozen=True)
class GrubbsResult:
    statistic: float
    critical: float
    p_value: float
    mean: float
    sd: float
    sd_raw: float
    boundary: float
    outlier: bool


def grubbs_one_sided(
    sample: np.ndarray,
    value: float,
    *,
    alpha: float,
    side: str,
    sd_floor: float = 0.0,
    paper_compat: bool = False,
) -> GrubbsResult:
    """Is `value` an outlier of `sample` on `side` ("low" or "high")?

    `sd_floor` bounds the sample standard deviation (ddof=1) from below. `boundary` is the value, in the
    sample's units, at which the decision flips.
    """
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high', got {side!r}")
    sample = np.asarray(sample, dtype=float)
    n = len(sample)
    mean = float(sample.mean())
    sd_raw = float(sample.std(ddof=1))
    sd = max(sd_raw, sd_floor)
    critical = grubbs_critical(n, alpha, paper_compat)
    sign = 1.0 if side == "low" else -1.0
    if sd == 0.0:
        statistic = math.inf if sign * (mean - value) > 0 else (0.0 if value == mean else -math.inf)
    else:
        statistic = sign * (mean - value) / sd
    return GrubbsResult(
        statistic=statistic,
        critical=critical,
        p_value=grubbs_p_value(statistic, n, paper_compat),
        mean=mean,
        sd=sd,
        sd_raw=sd_raw,
        boundary=mean - sign * critical * sd,
        outlier=statistic > critical,
    )


def outside_value_rate(n: int, alpha: float, paper_compat: bool = False) -> float:
    """How often the test calls one *more* value from the sample's own normal population an outlier.

    TrainProVe tests a value from outside the sample (the suspect's), while Grubbs's critical value is
    built for the most extreme of the n values inside it. For an outside value x, (mean - x) / s is
    sqrt(1 + 1/n) times a Student t with n - 1 degrees of freedom, so the rate is exactly
    P(t_{n-1} > G_crit / sqrt(1 + 1/n)). It is far below alpha for large n (0.0036 at n = 40, alpha =
    0.05) and above it for small n (0.21 at n = 3): there the test does not keep its promise.
    """
    from scipy import stats  # here: its import costs a second of a cached audit's start

    g = grubbs_critical(n, alpha, paper_compat)
    return float(stats.t.sf(g / math.sqrt(1.0 + 1.0 / n), n - 1))


@functools.lru_cache(maxsize=64)
def fewest_values(alpha: float, paper_compat: bool = False) -> int:
    """The smallest sample size at which `outside_value_rate` is at most alpha (8 at alpha = 0.05)."""
    n = 3
    while outside_value_rate(n, alpha, paper_compat) > alpha:
        n += 1
    return n
