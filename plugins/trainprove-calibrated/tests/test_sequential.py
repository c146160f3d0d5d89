"""The sequential calibrated rule (`[validation] rounds`): both error rates still bounded when the verdict
is taken at the first look that decides, and fewer queries end to end.

The null-rate check simulates the rule's own world at the level of single answers: reference models and
a suspect answer Bernoulli hits on the generator's images and on every reference set, innocent models'
relative error drawn by source (a between-source and a within-source spread), guilty models' shifted by
`gap`. At each look the rule's own code (`References.populations`, `decide`, `Look.spend`) judges the
suspect on the answers so far, and the first decision is the verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_calibrated import AUDIT, _suspects, assert_rate_at_most, glyph_plugins  # noqa: F401
from trainprove_calibrated.rule import CalibratedTest, Member, References, decide, hit_rate

from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.records import ImageSet
from trainprove_core.rounds import Look
from trainprove_core.store import Store

SOURCES = ["r1", "r2", "r3", "r4", "r5"]
N_G = N_R = 400


def _hits(rng, err: float, n: int) -> np.ndarray:
    return (rng.random(n) >= err).astype(np.int8)


def _model(rng, population: str, group: str, theta: float, leave_out: str | None) -> Member:
    """A model whose error on the references' images is about 0.25 and whose relative error is theta."""
    err_r = float(np.clip(rng.normal(0.25, 0.03), 0.05, 0.6))
    err_g = float(np.clip(err_r * np.exp(-theta), 0.002, 0.9))
    hits = {"": _hits(rng, err_g, N_G)}
    hits.update({s: _hits(rng, err_r, N_R) for s in SOURCES if s != leave_out})
    return Member(population, group, hits)


def _set(key: str, n: int) -> ImageSet:
    return ImageSet(key, key, np.zeros((n, 1, 1, 3), np.uint8), np.arange(n) % 4, {})


def _world(rng, gap: float) -> References:
    members = []
    for source in SOURCES:
        mu = rng.normal(0.0, 0.3)
        for _ in range(4):
            members.append(_model(rng, "innocent", source, mu + rng.normal(0, 0.1), source))
    for r in range(4):
        members.append(_model(rng, "guilty", str(r), gap + rng.normal(0, 0.3), None))
    sets = {s: _set(s, N_R) for s in SOURCES}
    refs = References(SOURCES, sets, {}, {}, [], members, _set("generator", N_G))
    refs.innocent, refs.guilty = refs.populations(
        {"": np.arange(N_G), **{s: np.arange(N_R) for s in SOURCES}}
    )
    return refs


def _sequential(
    refs: References, suspect: Member, alpha: float, beta: float, n_rounds: int, futility: bool = False
) -> tuple[str, int]:
    """The verdict of the first look that decides, and that look: the suspect's running extremes of its
    standardized statistics against the references' over all looks, as `CalibratedTest.decide` does (with
    `futility`, an inconclusive look that the rule's own `_futile` finds hopeless is final too)."""
    rule = CalibratedTest(SOURCES, alpha=alpha, beta=beta, min_accuracy=0.0)
    if n_rounds == 1:
        s = suspect.statistics({"": np.arange(N_G), **{x: np.arange(N_R) for x in SOURCES}})
        pure = refs.guilty["pure"]["gap"]
        decision = decide(
            s["relative"],
            refs.innocent["relative"],
            refs.guilty["absolute"],
            alpha,
            beta,
            s["absolute"],
            pure,
            s["gap"],
        )
        return decision[0], 1
    looks = refs.looks(n_rounds, "relative", "absolute")
    z_accuse, z_clear, z_pure = [], [], []
    for r in range(1, n_rounds + 1):
        s = suspect.statistics(looks.index[r - 1])
        z_accuse.append(looks.innocent[r - 1].z(s["relative"]))
        z_clear.append(looks.guilty[r - 1].z(s["absolute"]))
        z_pure.append(looks.pure[r - 1].z(s["gap"]))
        decision = decide(
            max(z_accuse),
            looks.innocent_max,
            looks.guilty_min,
            alpha,
            beta,
            min(z_clear),
            looks.pure_min,
            min(z_pure),
        )[0]
        if decision != "inconclusive" or r == n_rounds:
            return decision, r
        if futility:
            index = looks.index[r - 1]
            accuracies = {label: hit_rate(h[index[label]]) for label, h in suspect.hits.items()}
            acc_r = [a for label, a in accuracies.items() if label]
            observed = (accuracies[""], len(index[""]), acc_r, len(index[SOURCES[0]]))
            if rule._futile(looks, Look(r, n_rounds), observed, (z_accuse, z_clear, z_pure), refs):
                return "inconclusive", r
    raise AssertionError("unreachable")


@pytest.mark.slow
@pytest.mark.parametrize("gap", [1.0, 3.0])
def test_sequential_verdicts_keep_both_error_rates_and_stop_early(gap):
    """An innocent suspect of a new source is accused at most alpha of the time and a guilty one cleared
    at most beta, over every look together, whether the populations overlap (gap 1) or not (gap 3); where
    they do not, the verdicts that decide take half the queries or fewer, with no more inconclusive
    verdicts than the fixed design. (In this simulated world an innocent model does equally well on every
    source, so the clearing side's gap test, which looks for the source a model does best on, cannot clear
    it: most innocent verdicts stay inconclusive in both designs.)"""
    rng = np.random.default_rng([11, int(gap * 10)])
    alpha, beta, trials = 0.05, 0.05, 300
    accused = cleared = 0
    asked, undecided = [], {1: 0, 4: 0}
    for _ in range(trials):
        refs = _world(rng, gap)
        innocent = _model(rng, "innocent", "new", rng.normal(0.0, 0.3) + rng.normal(0, 0.1), None)
        guilty = _model(rng, "guilty", "new", gap + rng.normal(0, 0.3), None)
        for n_rounds in (1, 4):
            for suspect, wrong in ((innocent, "trained-on-generator"), (guilty, "not-trained-on-generator")):
                decision, look = _sequential(refs, suspect, alpha, beta, n_rounds)
                undecided[n_rounds] += decision == "inconclusive"
                if n_rounds == 4 and decision != "inconclusive":
                    asked.append(look / 4)
                    accused += decision == wrong == "trained-on-generator"
                    cleared += decision == wrong == "not-trained-on-generator"
    assert_rate_at_most(accused, trials, alpha, f"false accusation, gap {gap}")
    assert_rate_at_most(cleared, trials, beta, f"false clearing, gap {gap}")
    if gap >= 3.0:
        assert np.mean(asked) <= 0.5, np.mean(asked)
        assert undecided[4] <= undecided[1] + 0.02 * 2 * trials, undecided


def test_spending_adds_up_to_alpha():
    for rounds in (1, 2, 4, 7):
        total = sum(Look(r, rounds).spend(0.01) for r in range(1, rounds + 1))
        assert total == pytest.approx(0.01, rel=1e-12)


@pytest.mark.slow
def test_a_sequential_audit_asks_fewer_queries_for_the_same_verdicts(glyph_plugins, tmp_path):  # noqa: F811
    store = Store(tmp_path / "store")
    doc = {**AUDIT, "suspect": _suspects(glyph_plugins, store, tmp_path)}
    fixed = run_audit(config_from_dict(doc, glyph_plugins), glyph_plugins, tmp_path / "fixed", store, False)
    doc = {**doc, "validation": {**AUDIT["validation"], "rounds": 4}}
    seq = run_audit(config_from_dict(doc, glyph_plugins), glyph_plugins, tmp_path / "seq", store, False)
    before = {v["suspect"]: v for v in fixed.report["verdicts"]}
    after = {v["suspect"]: v for v in seq.report["verdicts"]}
    assert after["guilty"]["decision"] == before["guilty"]["decision"] == "trained-on-generator"
    assert after["innocent"]["decision"] != "trained-on-generator"
    suspects = {s["name"]: s for s in seq.report["suspects"]}
    guilty = suspects["guilty"]
    look = after["guilty"]["details"]["look"]
    assert guilty["rounds"] == {"asked": look["round"], "of": 4}
    assert (
        guilty["queries_fixed_design"]
        == {s["name"]: s for s in fixed.report["suspects"]}["guilty"]["queries_asked"]
    )
    if look["round"] < 4:
        assert guilty["queries_asked"] < guilty["queries_fixed_design"]
    assert guilty["queries_sent"] == guilty["queries_asked"]  # slices are cached apart from the full set
    # Run again: every slice is cached, nothing is asked.
    again = run_audit(config_from_dict(doc, glyph_plugins), glyph_plugins, tmp_path / "again", store, False)
    assert {s["name"]: s["queries_sent"] for s in again.report["suspects"]} == {"guilty": 0, "innocent": 0}
    assert [v["decision"] for v in again.report["verdicts"]] == [
        v["decision"] for v in seq.report["verdicts"]
    ]


@pytest.mark.slow
def test_futility_stops_save_the_queries_of_verdicts_that_stay_inconclusive():
    """Where the populations overlap (gap 1) most verdicts stay inconclusive to the last look; a futility
    stop ends them early. It cannot raise either error rate (an inconclusive verdict is neither error), so
    what is checked is its cost: it stops early on most of them, and turns few verdicts the whole path
    would have decided into inconclusive ones."""
    rng = np.random.default_rng([13, 10])
    alpha, beta, trials = 0.05, 0.05, 200
    looks_plain, looks_futile, lost, stayed = [], [], 0, 0
    for _ in range(trials):
        refs = _world(rng, 1.0)
        innocent = _model(rng, "innocent", "new", rng.normal(0.0, 0.3) + rng.normal(0, 0.1), None)
        guilty = _model(rng, "guilty", "new", 1.0 + rng.normal(0, 0.3), None)
        for suspect in (innocent, guilty):
            plain, at_plain = _sequential(refs, suspect, alpha, beta, 4)
            futile, at_futile = _sequential(refs, suspect, alpha, beta, 4, futility=True)
            looks_plain.append(at_plain)
            looks_futile.append(at_futile)
            if futile != plain:  # only ever a stop before the look that would have decided
                assert futile == "inconclusive" and at_futile < at_plain
                lost += 1
            stayed += plain == "inconclusive"
    assert stayed > trials  # the setting is one where abstention is common
    assert np.mean(looks_futile) <= 0.75 * np.mean(looks_plain), (np.mean(looks_futile), np.mean(looks_plain))
    assert lost <= 0.05 * 2 * trials, lost
