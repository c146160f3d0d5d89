"""What the TrainProVe tests promise, checked over many seeded trials; the other error rate, measured.

Alpha in these tests bounds *false clearing*: calling a suspect that did train on the generator "not
trained". Each check draws T seeded trials and fails when the one-sided 99.9% Clopper-Pearson lower bound
on the observed rate is above the claim, so a rule that keeps its claim fails here with probability at most
0.1% (and, the seeds being fixed, the outcome is reproducible). Nothing bounds *false accusation*; the
realistic simulations record it (`record_property`, visible in JUnit XML) and the benchmark reports it.

Two simulations (see `trainprove_core.simulate`): the rule's own model (n normal reference values and
one more value from the same normal) and a realistic audit (binomial batch correctness, per-suspect shifts).
"""

import numpy as np
import pytest
from trainprove_paper.grubbs import fewest_values, grubbs_one_sided
from trainprove_paper.trainprove import TrainProVeTest
from trainprove_paper.variants import EntropyTest, SimilarityTest

from trainprove_core.evidence import clopper_pearson, clopper_pearson_lower
from trainprove_core.simulate import SimulatedAudit, error_rates

CONFIDENCE = 0.999


def assert_rate_at_most(k: int, trials: int, claim: float, what: str) -> None:
    lower = clopper_pearson_lower(k, trials, CONFIDENCE)
    assert lower <= claim, (
        f"{what}: {k} of {trials} ({k / trials:.4f}); the {CONFIDENCE:.1%} lower bound {lower:.4f} "
        f"exceeds the claimed {claim}"
    )


@pytest.mark.parametrize("side", ["low", "high"])
@pytest.mark.parametrize(("alpha", "paper_compat"), [(0.05, False), (0.01, False), (0.05, True)])
@pytest.mark.parametrize("n", ["fewest", 40])
def test_grubbs_keeps_its_alpha_under_its_own_model(side, alpha, paper_compat, n):
    n = fewest_values(alpha, paper_compat) if n == "fewest" else n
    rng = np.random.default_rng([n, int(alpha * 1000), paper_compat, side == "low"])
    trials = 4000
    flagged = 0
    for _ in range(trials):
        sample, value = rng.normal(0.9, 0.03, n), rng.normal(0.9, 0.03)
        r = grubbs_one_sided(sample, value, alpha=alpha, side=side, paper_compat=paper_compat)
        flagged += r.outlier
    assert_rate_at_most(flagged, trials, alpha, f"Grubbs n={n} alpha={alpha} paper_compat={paper_compat}")


REALISTIC = SimulatedAudit()
LABEL_TRIALS = 1000
PROBABILITY_TRIALS = 400


@pytest.mark.parametrize(
    "test", [TrainProVeTest(), TrainProVeTest(paper_compat=True)], ids=["textbook", "paper"]
)
def test_trainprove_keeps_alpha_in_realistic_audits_and_its_false_accusations_are_measured(
    test, record_property
):
    counts = error_rates(test, REALISTIC, LABEL_TRIALS, seed=11)
    assert counts["abstain"] == 0
    assert_rate_at_most(counts["false_clear"], LABEL_TRIALS, test.alpha, "trainprove false clearing")
    lo, hi = clopper_pearson(counts["false_accuse"], LABEL_TRIALS)
    record_property("false_accusation_rate", counts["false_accuse"] / LABEL_TRIALS)
    record_property("false_accusation_ci95", (lo, hi))
    # What the measurement shows: with 125-image batches the Grubbs boundary sits about 2.9 batch standard
    # deviations (~7.7 points here) below the shadow, so suspects 5 points worse are nearly all accused.
    assert lo > 0.5


@pytest.mark.parametrize(
    "test",
    [
        pytest.param(
            EntropyTest(),
            marks=pytest.mark.xfail(
                strict=True,
                reason="measured, not assumed: a same-source suspect's confidence differs from the shadow's "
                "by more than the spread of the shadow's batch entropies, so TrainProVe-Ent clears about 13% "
                "of them at alpha = 0.05 (see docs/decision-tests.md)",
            ),
            id="ent",
        ),
        pytest.param(SimilarityTest(), id="sim"),
    ],
)
@pytest.mark.slow
def test_probability_variants_keep_alpha_in_realistic_audits(test, record_property):
    counts = error_rates(test, REALISTIC, PROBABILITY_TRIALS, seed=12, probabilities=True)
    record_property("false_clearing_rate", counts["false_clear"] / PROBABILITY_TRIALS)
    record_property("false_accusation_rate", counts["false_accuse"] / PROBABILITY_TRIALS)
    assert_rate_at_most(counts["false_clear"], PROBABILITY_TRIALS, test.alpha, f"{test.name} false clearing")


def test_sequential_trainprove_keeps_alpha_and_clears_early(record_property):
    """In rounds (a sequential audit), TrainProVe spends its alpha over the looks: it still clears a suspect
    trained on the generator at most alpha of the time, and an other-source suspect it clears is cleared
    before the last round."""
    test = TrainProVeTest()
    fixed = error_rates(test, REALISTIC, 300, seed=12)
    counts = error_rates(test, REALISTIC, 300, seed=12, n_rounds=4)
    assert_rate_at_most(counts["false_clear"], counts["trials"], test.alpha, "sequential TrainProVe")
    record_property("sequential_rounds_per_suspect", counts["rounds"] / (2 * counts["trials"]))
    record_property("sequential_false_accuse", counts["false_accuse"] / counts["trials"])
    record_property("fixed_false_accuse", fixed["false_accuse"] / fixed["trials"])
    assert counts["rounds"] < 4 * 2 * counts["trials"]
