"""What the baselines promise, checked over many seeded trials; the other error rate, measured.

Same method as trainprove-tests' test_null_rates.py: a claim fails when the one-sided 99.9% Clopper-Pearson
lower bound on the observed rate exceeds it (a rule that keeps its claim fails with probability <= 0.1%).
Welch claims alpha for the error its `null` protects; random guessing claims both of its rates exactly;
the accuracy threshold and the meta-classifier claim nothing and are only measured (in the benchmark).
"""

import numpy as np
import pytest
from trainprove_baselines.random_guess import RandomGuessTest
from trainprove_baselines.welch import WelchTest, welch_one_sided

from trainprove_core.evidence import clopper_pearson, clopper_pearson_lower
from trainprove_core.simulate import SimulatedAudit, error_rates

CONFIDENCE = 0.999


def assert_rate_at_most(k: int, trials: int, claim: float, what: str) -> None:
    lower = clopper_pearson_lower(k, trials, CONFIDENCE)
    assert lower <= claim, (
        f"{what}: {k} of {trials}; the {CONFIDENCE:.1%} lower bound {lower:.4f} exceeds {claim}"
    )


@pytest.mark.parametrize("null", ["trained", "not-trained"])
@pytest.mark.parametrize("n", [5, 40])
def test_welch_keeps_alpha_at_the_margin_under_its_own_model(null, n):
    # The hardest case H0 allows: the suspect's batches are exactly `margin` below the shadow's on average.
    rng = np.random.default_rng([n, null == "trained"])
    alpha, margin, trials = 0.05, 0.02, 4000
    wrong = 0
    for _ in range(trials):
        shadow, suspect = rng.normal(0.9, 0.03, n), rng.normal(0.9 - margin, 0.04, n)
        r = welch_one_sided(suspect, shadow, margin=margin, alpha=alpha, null=null)
        wrong += r.p_value < alpha
    assert_rate_at_most(wrong, trials, alpha, f"Welch null={null} n={n}")


REALISTIC = SimulatedAudit()
TRIALS = 1000


def test_welch_trained_null_keeps_false_clearing_in_realistic_audits(record_property):
    test = WelchTest(null="trained")
    counts = error_rates(test, REALISTIC, TRIALS, seed=21)
    assert_rate_at_most(counts["false_clear"], TRIALS, test.alpha, "welch (null trained) false clearing")
    record_property("false_accusation_rate", counts["false_accuse"] / TRIALS)


def test_welch_not_trained_null_keeps_false_accusation_in_realistic_audits(record_property):
    # The promise covers suspects at least `margin` below the shadow; the simulated other-source suspects
    # are `gap` = 0.05 below on average, with a 0.01 spread, so nearly all of them are covered.
    test = WelchTest(null="not-trained")
    counts = error_rates(test, REALISTIC, TRIALS, seed=22)
    assert_rate_at_most(
        counts["false_accuse"], TRIALS, test.alpha, "welch (null not-trained) false accusation"
    )
    record_property("false_clearing_rate", counts["false_clear"] / TRIALS)


def test_random_guess_has_exactly_its_stated_rates():
    # One coin per (seed, suspect name): vary both over the trials.
    tiny, trials = SimulatedAudit(n_batches=2, batch_size=10), 4000
    rng = np.random.default_rng(23)
    for p in (0.5, 0.2):
        accused = cleared = 0
        for t in range(trials):
            test = RandomGuessTest(p_trained=p, seed=t)
            accused += (
                test.decide(tiny.evidence(rng, False, name=f"other-{t}")).decision == "trained-on-generator"
            )
            cleared += (
                test.decide(tiny.evidence(rng, True, name=f"same-{t}")).decision == "not-trained-on-generator"
            )
        for k, claim, what in ((accused, p, "false accusation"), (cleared, 1 - p, "false clearing")):
            lo, hi = clopper_pearson(k, trials, CONFIDENCE)
            assert lo <= claim <= hi, (
                f"random-guess p={p} {what}: {k} of {trials} outside [{lo:.3f}, {hi:.3f}]"
            )
