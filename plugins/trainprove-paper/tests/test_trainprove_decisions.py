"""The three TrainProVe tests on evidence whose truth is known, and the cases where they abstain."""

import numpy as np
import pytest
from scipy import stats
from trainprove_paper import plugin
from trainprove_paper.trainprove import TrainProVeTest
from trainprove_paper.variants import EntropyTest, SimilarityTest, mean_pairwise_cosine, prediction_entropy

from trainprove_core.config import validate_table
from trainprove_core.errors import ConfigError
from trainprove_core.evidence import Preconditions, batch_accuracies
from trainprove_core.records import Answers, Evidence
from trainprove_core.simulate import SimulatedAudit
from trainprove_core.testing import DecisionTestContract, build, isolated_plugins

WORLD = SimulatedAudit(gap=0.15, confidence_gap=2.0)


class TestEveryTrainProVeTest(DecisionTestContract):
    """The decision-test contract, for each of the three tests as an audit file builds them."""

    @pytest.fixture(params=["trainprove", "trainprove-ent", "trainprove-sim"])
    def decision_test_factory(self, request):
        return lambda **settings: build(plugin, "test", request.param, settings)


def _evidence(trained: bool, seed: int = 0, probabilities: bool = True, world: SimulatedAudit = WORLD):
    return world.evidence(np.random.default_rng(seed), trained, probabilities, name="s")


ALL = [TrainProVeTest(), EntropyTest(), SimilarityTest()]


@pytest.mark.parametrize("test", ALL, ids=lambda t: type(t).__name__)
def test_each_variant_separates_a_clear_case(test):
    trained = test.decide(_evidence(True))
    other = test.decide(_evidence(False))
    assert trained.decision == "trained-on-generator", trained.explanation
    assert other.decision == "not-trained-on-generator", other.explanation
    assert other.details["score"] < trained.details["score"]
    assert other.statistic > other.threshold and other.explanation.startswith("s: not trained on generator")


def test_verdict_fields_describe_the_grubbs_test():
    ev = _evidence(False, probabilities=False)
    v = TrainProVeTest(alpha=0.01).decide(ev)
    shadow = batch_accuracies(ev, ev.shadow)
    assert v.n == 40 and v.alpha == 0.01 and v.sample == pytest.approx(shadow)
    assert v.suspect_value == pytest.approx(np.mean(ev.suspect.labels == ev.true_labels))
    assert v.statistic == pytest.approx((shadow.mean() - v.suspect_value) / v.details["sd"])
    assert v.boundary == pytest.approx(shadow.mean() - v.threshold * v.details["sd"])
    assert 0 <= v.p_value < 0.01


def test_entropy_and_similarity_match_independent_formulas():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(5), size=7)
    assert prediction_entropy(p) == pytest.approx(stats.entropy(p, axis=1))
    v = rng.normal(size=(6, 4))
    pairs = [
        max(0.0, v[i] @ v[j] / np.linalg.norm(v[i]) / np.linalg.norm(v[j]))
        for i in range(6)
        for j in range(6)
        if i < j
    ]
    assert mean_pairwise_cosine(v) == pytest.approx(np.mean(pairs))
    q = np.abs(v)  # non-negative rows take the O(k C) path
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    pairs = [unit[i] @ unit[j] for i in range(6) for j in range(i + 1, 6)]
    assert mean_pairwise_cosine(q) == pytest.approx(np.mean(pairs))


def test_similarity_samples_one_value_per_class():
    v = SimilarityTest().decide(_evidence(True))
    assert v.n == WORLD.n_classes and v.quantity.startswith("mean pairwise cosine")
    entropy = EntropyTest().decide(_evidence(True))
    assert entropy.n == WORLD.n_batches and entropy.details["side"] == "high"


@pytest.mark.parametrize("test", [EntropyTest(), SimilarityTest()], ids=lambda t: type(t).__name__)
def test_probability_tests_decline_label_only_evidence(test):
    v = test.decide(_evidence(True, probabilities=False))
    assert v.decision == "inconclusive" and "labels only" in v.explanation


@pytest.mark.parametrize("test", ALL, ids=lambda t: type(t).__name__)
def test_too_small_a_sample_for_alpha_is_inconclusive(test):
    world = SimulatedAudit(n_batches=6, n_classes=6, gap=0.15, confidence_gap=2.0)
    v = test.decide(_evidence(False, world=world))
    assert v.decision == "inconclusive" and "only 6" in v.explanation and "at least 8" in v.explanation
    looser = type(test)(alpha=0.1).decide(_evidence(False, world=world))  # 6 values keep alpha = 0.1
    assert looser.decision == "not-trained-on-generator", looser.explanation


def test_a_shadow_near_chance_is_inconclusive():
    world = SimulatedAudit(shadow_accuracy=0.15, gap=0.0)
    v = TrainProVeTest().decide(_evidence(True, world=world, probabilities=False))
    assert v.decision == "inconclusive" and "within 0.10 of chance (0.100)" in v.explanation


def test_too_few_answers_is_inconclusive_and_unanswered_images_are_ignored():
    ev = _evidence(True, probabilities=False)
    labels = ev.suspect.labels.copy()
    labels[: len(labels) // 10] = -1  # 10% unanswered
    partial = Evidence(ev.task, ev.true_labels, ev.batches, ev.shadow, Answers(labels), "s")
    v = TrainProVeTest().decide(partial)
    assert v.decision == "inconclusive" and "answered only 4500 of 5000" in v.explanation
    tolerant = TrainProVeTest(preconditions=Preconditions(min_answered=0.8)).decide(partial)
    answered = labels >= 0
    assert tolerant.suspect_value == pytest.approx(
        np.mean(
            [
                np.mean(labels[b][answered[b]] == ev.true_labels[b][answered[b]])
                for b in ev.batches
                if answered[b].any()
            ]
        )
    )


def test_inconsistent_evidence_is_a_bug_not_a_verdict():
    ev = _evidence(True, probabilities=False)
    short = Evidence(ev.task, ev.true_labels, ev.batches, ev.shadow, Answers(ev.suspect.labels[:10]), "s")
    with pytest.raises(ValueError, match="inconsistent"):
        TrainProVeTest().decide(short)


def test_plugin_registers_three_tests_with_validated_options():
    plugins = isolated_plugins((plugin, "trainprove-paper"))
    assert {"trainprove", "trainprove-ent", "trainprove-sim"} <= set(plugins.names("test"))
    for name in ("trainprove", "trainprove-ent", "trainprove-sim"):
        spec = plugins.get("test", name).spec
        settings = {o.name: o.default for o in spec.options}
        assert spec.factory(settings).needs == ("labels" if name == "trainprove" else "probabilities")
    spec = plugins.get("test", "trainprove").spec
    with pytest.raises(ConfigError, match="alpha"):
        spec.factory({**{o.name: o.default for o in spec.options}, "alpha": 1.5})


def test_audit_file_keys_are_checked_against_the_declared_options():
    plugins = isolated_plugins((plugin, "trainprove-paper"))
    options = plugins.get("test", "trainprove-sim").spec.options
    settings = validate_table({"alpha": 0.01}, options, source="audit.toml", where="test 1")
    assert settings["alpha"] == 0.01 and settings["min_answered"] == 0.95
    with pytest.raises(ConfigError, match="unknown key 'min_batches'"):  # Sim samples classes, not batches
        validate_table({"min_batches": 3}, options, source="audit.toml", where="test 1")
