import math

import numpy as np
import pytest
from scipy import stats
from trainprove_paper.grubbs import (
    fewest_values,
    grubbs_critical,
    grubbs_one_sided,
    grubbs_p_value,
    outside_value_rate,
)

from trainprove_core.evidence import binomial_sd_floor


def _textbook(n: int, alpha: float, tail: float) -> float:
    # Written independently from the NIST handbook's form: G > (N-1)/sqrt(N) * sqrt(t^2 / (N - 2 + t^2)),
    # t the upper critical value of t(N-2) at significance `tail`.
    t = stats.t.ppf(1 - tail, n - 2)
    return (n - 1) / np.sqrt(n) * np.sqrt(t**2 / (n - 2 + t**2))


def test_critical_values_match_the_paper_numbers():
    assert grubbs_critical(40, 0.05) == pytest.approx(2.868, abs=5e-4)
    assert grubbs_critical(40, 0.05, paper_compat=True) == pytest.approx(3.036, abs=5e-4)


@pytest.mark.parametrize("n", [3, 10, 20, 40, 100])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_critical_values_match_an_independent_formula(n, alpha):
    assert grubbs_critical(n, alpha) == pytest.approx(_textbook(n, alpha, alpha / n), rel=1e-9)
    assert grubbs_critical(n, alpha, True) == pytest.approx(_textbook(n, alpha, alpha / (2 * n)), rel=1e-9)


@pytest.mark.parametrize("paper_compat", [False, True])
def test_p_value_inverts_the_critical_value(paper_compat):
    g = grubbs_critical(40, 0.05, paper_compat)
    assert grubbs_p_value(g, 40, paper_compat) == pytest.approx(0.05, rel=1e-6)
    assert grubbs_p_value(-1.0, 40) == 1.0


def test_low_side_decision_and_boundary():
    sample = np.full(40, 0.8) + np.linspace(-0.02, 0.02, 40)
    r = grubbs_one_sided(sample, 0.5, alpha=0.05, side="low")
    assert r.outlier and r.statistic > r.critical
    assert r.boundary == pytest.approx(r.mean - r.critical * r.sd)
    assert not grubbs_one_sided(sample, 0.95, alpha=0.05, side="low").outlier  # better than the shadow
    assert grubbs_one_sided(sample, 0.95, alpha=0.05, side="high").outlier


def test_floor_keeps_a_perfect_shadow_from_accusing_a_near_perfect_suspect():
    sample = np.ones(40)
    sizes = np.full(40, 125)
    floor = binomial_sd_floor(sample, sizes)
    assert floor == pytest.approx(math.sqrt((1 / 5002) * (1 - 1 / 5002) / 125))
    assert grubbs_one_sided(sample, 0.999, alpha=0.05, side="low").outlier  # unfloored: spurious outlier
    assert not grubbs_one_sided(sample, 0.999, alpha=0.05, side="low", sd_floor=floor).outlier


def test_too_small_samples_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        grubbs_critical(2, 0.05)


@pytest.mark.parametrize("n", [3, 5, 8, 40])
def test_outside_value_rate_matches_a_simulation(n):
    # One value from outside the sample, same normal population: the exact rate of calling it an outlier.
    rng = np.random.default_rng(n)
    sample, value = rng.normal(size=(200_000, n)), rng.normal(size=200_000)
    g = (sample.mean(axis=1) - value) / sample.std(axis=1, ddof=1)
    rate = outside_value_rate(n, 0.05)
    tolerance = 4 * math.sqrt(rate / 200_000) + 1e-4
    assert np.mean(g > grubbs_critical(n, 0.05)) == pytest.approx(rate, abs=tolerance)


def test_fewest_values_is_where_alpha_starts_to_hold():
    assert fewest_values(0.05) == 8 and fewest_values(0.01) == 16
    for alpha in (0.2, 0.05, 0.01):
        n = fewest_values(alpha)
        assert outside_value_rate(n, alpha) <= alpha < outside_value_rate(n - 1, alpha)
