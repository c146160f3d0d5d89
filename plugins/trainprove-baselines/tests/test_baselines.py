"""The label baselines on evidence whose truth is known: decisions, statistics, abstentions, options."""

import numpy as np
import pytest
from scipy import stats
from trainprove_baselines import plugin
from trainprove_baselines.random_guess import RandomGuessTest
from trainprove_baselines.threshold import AccuracyThresholdTest
from trainprove_baselines.welch import WelchTest, welch_one_sided

from trainprove_core.errors import ConfigError
from trainprove_core.evidence import batch_accuracies
from trainprove_core.records import Answers, Evidence
from trainprove_core.simulate import SimulatedAudit
from trainprove_core.testing import DecisionTestContract, build, isolated_plugins

WORLD = SimulatedAudit(gap=0.1)


class TestWelchContract(DecisionTestContract):
    """The decision-test contract, for Welch's test with either null hypothesis."""

    @pytest.fixture(params=["trained", "not-trained"])
    def decision_test_factory(self, request):
        return lambda **settings: build(plugin, "test", "welch", {"null": request.param, **settings})


def _evidence(trained: bool, seed: int = 0, world: SimulatedAudit = WORLD, name: str = "s") -> Evidence:
    return world.evidence(np.random.default_rng(seed), trained, name=name)


def test_threshold_absolute_and_relative():
    ev = _evidence(False)
    accuracy = float(np.mean(ev.suspect.labels == ev.true_labels))
    shadow = float(np.mean(ev.shadow.labels == ev.true_labels))
    below = AccuracyThresholdTest(threshold=accuracy + 0.01).decide(ev)
    at = AccuracyThresholdTest(threshold=accuracy).decide(ev)
    assert below.decision == "not-trained-on-generator" and at.decision == "trained-on-generator"
    assert below.suspect_value == pytest.approx(accuracy)
    assert below.details["score"] < 0 <= at.details["score"]
    relative = AccuracyThresholdTest(threshold=0.95, relative=True).decide(ev)
    assert relative.boundary == pytest.approx(0.95 * shadow) and "x the shadow's" in relative.explanation


def test_threshold_abstains_on_a_partial_answer_sheet():
    ev = _evidence(True)
    labels = ev.suspect.labels.copy()
    labels[::2] = -1
    partial = Evidence(ev.task, ev.true_labels, ev.batches, ev.shadow, Answers(labels), "s")
    v = AccuracyThresholdTest().decide(partial)
    assert v.decision == "inconclusive" and "answered only 2500 of 5000" in v.explanation


def test_welch_without_margin_or_floor_is_scipys_welch_test():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.8, 0.03, 30), rng.normal(0.82, 0.02, 40)
    r = welch_one_sided(x, y, margin=0.0, alpha=0.05, null="trained")
    reference = stats.ttest_ind(x, y, equal_var=False, alternative="less")
    assert r.statistic == pytest.approx(reference.statistic) and r.p_value == pytest.approx(reference.pvalue)
    upper = welch_one_sided(x, y, margin=0.0, alpha=0.05, null="not-trained")
    greater = stats.ttest_ind(x, y, equal_var=False, alternative="greater")
    assert upper.p_value == pytest.approx(greater.pvalue)
    shifted = welch_one_sided(x, y, margin=0.01, alpha=0.05, null="trained")
    assert shifted.statistic == pytest.approx(stats.ttest_ind(x + 0.01, y, equal_var=False).statistic)


@pytest.mark.parametrize("null", ["trained", "not-trained"])
def test_welch_decides_both_ways_and_its_boundary_is_where_it_flips(null):
    test = WelchTest(null=null)
    trained, other = test.decide(_evidence(True)), test.decide(_evidence(False))
    assert trained.decision == "trained-on-generator", trained.explanation
    assert other.decision == "not-trained-on-generator", other.explanation
    assert other.details["score"] < trained.details["score"]
    for v in (trained, other):
        flips_below = v.suspect_value < v.boundary
        assert flips_below == (v.decision == "not-trained-on-generator")
        assert (v.p_value < v.alpha) == ("rejected" in v.explanation)


def test_welch_margin_decides_a_small_gap():
    ev = _evidence(True, world=SimulatedAudit(shift_sd=0.0, shadow_accuracy=0.9, n_batches=200))
    x, y = batch_accuracies(ev, ev.suspect), batch_accuracies(ev, ev.shadow)
    assert abs(x.mean() - y.mean()) < 0.01
    assert WelchTest(margin=0.03).decide(ev).decision == "trained-on-generator"
    assert WelchTest(margin=0.03, null="not-trained").decide(ev).decision == "trained-on-generator"


def test_welch_floor_keeps_two_perfect_models_from_a_division_by_zero():
    ev = _evidence(True, world=SimulatedAudit(shadow_accuracy=1.0, shift_sd=0.0))
    v = WelchTest(margin=0.0).decide(ev)
    assert v.decision == "trained-on-generator" and np.isfinite(v.statistic) and v.details["se"] > 0


def test_random_guess_is_seeded_per_suspect_and_ignores_the_evidence():
    test = RandomGuessTest(seed=3)
    first = [test.decide(_evidence(True, seed=i, name=f"s{i}")).decision for i in range(20)]
    again = [test.decide(_evidence(False, seed=i + 100, name=f"s{i}")).decision for i in range(20)]
    assert first == again and len(set(first)) == 2
    assert RandomGuessTest(p_trained=1.0).decide(_evidence(False)).decision == "trained-on-generator"
    assert RandomGuessTest(p_trained=0.0).decide(_evidence(True)).decision == "not-trained-on-generator"


def test_plugin_registers_four_baselines_that_build_from_their_defaults():
    plugins = isolated_plugins((plugin, "trainprove-baselines"))
    assert plugins.names("test") == ["accuracy-threshold", "meta-classifier", "random-guess", "welch"]
    for name in ("accuracy-threshold", "random-guess", "welch"):
        spec = plugins.get("test", name).spec
        assert spec.factory({o.name: o.default for o in spec.options}).needs == "labels"
    spec = plugins.get("test", "meta-classifier").spec
    settings = {o.name: o.default for o in spec.options if not o.required}
    assert spec.factory({**settings, "sources": ["other"]}).needs == "labels"


@pytest.mark.parametrize(
    ("name", "settings", "match"),
    [
        ("welch", {"alpha": 0.0}, "alpha"),
        ("welch", {"margin": -0.1}, "margin"),
        ("welch", {"min_batches": 2}, "min_batches"),
        ("accuracy-threshold", {"threshold": 1.5}, "threshold"),
        ("random-guess", {"p_trained": 2.0}, "p_trained"),
        ("meta-classifier", {"sources": []}, "sources"),
        ("meta-classifier", {"sources": ["a"], "shadows_per_source": 1}, "shadows_per_source"),
        ("meta-classifier", {"sources": ["a"], "source_settings": {"b": {}}}, "not in `sources`"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_setting(name, settings, match):
    spec = isolated_plugins((plugin, "trainprove-baselines")).get("test", name).spec
    defaults = {o.name: o.default for o in spec.options if not o.required}
    with pytest.raises(ConfigError, match=match):
        spec.factory({**defaults, **settings})
