"""The core's test kit (`trainprove_core.glyphs`) passes the contracts plugin authors use
(`trainprove_core.testing`), and the contracts catch what they promise to catch."""

from __future__ import annotations

import numpy as np
import pytest

from trainprove_core.glyphs import GlyphPlugin, PixelTrainer
from trainprove_core.records import Answers, Verdict
from trainprove_core.task import Task
from trainprove_core.testing import (
    DecisionTestContract,
    GeneratorContract,
    SuspectAdapterContract,
    build,
    requests,
)

GLYPHS = ("hbar", "vbar", "diag", "ring")


def _kit(name: str, kind: str = "generator"):
    return lambda **settings: build(GlyphPlugin(), kind, name, settings)


class TestGlyphs(GeneratorContract):
    classes = GLYPHS
    identity_changes = ({"style": 0.5}, {"noise": 0.1})
    identity_keeps = ({"batch_size": 3}, {"log": None})

    @pytest.fixture
    def generator_factory(self):
        return _kit("glyphs")


class TestShapes(GeneratorContract):
    classes = ("disc", "ring", "hbar", "vbar", "square")
    identity_changes = ({"style": 1.0}, {"noise": 0.12})
    identity_keeps = ({"batch_size": 5},)

    @pytest.fixture
    def generator_factory(self):
        return _kit("shapes")


@pytest.fixture(scope="module")
def glyph_images():
    gen = build(GlyphPlugin(), "generator", "glyphs", {})
    reqs = requests(range(200), GLYPHS)
    return gen.generate(reqs), np.array([r.class_index for r in reqs])


@pytest.fixture(scope="module")
def pixel_model_dir(tmp_path_factory, glyph_images):
    out = tmp_path_factory.mktemp("pixel-logistic")
    PixelTrainer().train(*glyph_images, Task(GLYPHS, 8), out)
    return out


class TestPixelLogistic(SuspectAdapterContract):
    classes = GLYPHS
    image_size = 8

    @pytest.fixture
    def adapter_factory(self, pixel_model_dir, adapter_task):
        table = {"model_dir": str(pixel_model_dir)}
        return lambda **settings: build(
            GlyphPlugin(), "suspect", "pixel-logistic", {**table, **settings}, adapter_task
        )

    @pytest.fixture
    def adapter_images(self, glyph_images):
        return glyph_images[0][:30]


# ---- the contracts catch faults --------------------------------------------------------------------------


class SharedNoise:
    """A generator whose images depend on their batch: one random stream for the whole call."""

    identity = {"generator": "shared-noise"}
    native_size, batch_size = 4, 8

    def generate(self, reqs):
        rng = np.random.default_rng(sum(r.seed for r in reqs))
        return rng.integers(0, 256, (len(reqs), 4, 4, 3), dtype=np.uint8)


def test_the_generator_contract_catches_images_that_depend_on_the_batch():
    with pytest.raises(AssertionError, match="depend on the batch"):
        GeneratorContract().test_an_image_depends_only_on_its_own_request(SharedNoise())


def test_the_contracts_catch_an_identity_that_is_not_json_or_ignores_a_setting():
    class Opaque(SharedNoise):
        identity = {"weights": object()}

    with pytest.raises(AssertionError, match="not JSON-serialisable"):
        GeneratorContract().test_identity_is_json_and_follows_the_settings(lambda **s: Opaque())
    contract = GeneratorContract()
    contract.identity_changes = ({"steps": 5},)
    with pytest.raises(AssertionError, match="identity ignores"):
        contract.test_identity_is_json_and_follows_the_settings(lambda **s: SharedNoise())


def test_the_adapter_contract_catches_probabilities_that_are_not_a_distribution(
    glyph_images, pixel_model_dir
):
    task = Task(GLYPHS, 8)
    adapter = build(GlyphPlugin(), "suspect", "pixel-logistic", {"model_dir": str(pixel_model_dir)}, task)
    real = adapter.predict

    def unnormalised(images):
        answers = real(images)
        return Answers(answers.labels, answers.probabilities * 2)

    adapter.predict = unnormalised
    with pytest.raises(AssertionError, match="rows do not sum to 1"):
        SuspectAdapterContract().test_one_answer_per_image_in_the_label_space(
            adapter, task, glyph_images[0][:8]
        )


class AlwaysAccuses:
    """A rule that accuses whatever the evidence, even none."""

    needs = "labels"

    def decide(self, evidence):
        return Verdict(
            evidence.suspect_name, "accuser", "trained-on-generator", "always", details={"score": 1.0}
        )


def test_the_decision_test_contract_catches_a_decision_on_degenerate_evidence():
    with pytest.raises(AssertionError, match="the suspect answered nothing, yet: always"):
        DecisionTestContract().test_degenerate_evidence_is_inconclusive(AlwaysAccuses())
    with pytest.raises(AssertionError, match="always"):
        DecisionTestContract().test_clear_cases_come_out_right(AlwaysAccuses())
