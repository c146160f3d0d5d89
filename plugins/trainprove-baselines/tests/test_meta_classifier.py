"""The meta-classifier against real models, through the core's Workspace (cached sets, models, answers).

The image source and the models are small but real: a procedural class-conditional generator drawn with
numpy (each source has its own house style) and a multinomial logistic regression on pixels, trained,
saved to a directory and loaded back as any shadow model is. Nothing here fakes a model's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trainprove_baselines import plugin
from trainprove_baselines.meta import MetaClassifierTest

from trainprove_core.audit import Workspace, validation_batches
from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.errors import ConfigError
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import (
    Answers,
    Evidence,
    GenerationRequest,
    GeneratorSpec,
    Option,
    QueryCost,
    ShadowTrainerSpec,
    SuspectAdapterSpec,
)
from trainprove_core.store import Store
from trainprove_core.task import Task
from trainprove_core.testing import isolated_plugins


class Glyphs:
    """Class c is one of four strokes at a jittered position; `style` moves, thickens and textures it."""

    native_size = 8
    batch_size = 64

    def __init__(self, style: float) -> None:
        self.style = style
        self.identity = {"generator": "glyphs", "style": style}

    def _one(self, r: GenerationRequest) -> np.ndarray:
        rng = np.random.default_rng(r.seed)
        yy, xx = np.mgrid[0:8, 0:8].astype(float)
        cy, cx = 3.5 + rng.normal(0, 0.7, 2) + self.style
        strokes = [
            np.abs(yy - cy),
            np.abs(xx - cx),
            np.abs(yy - xx - cy + cx),
            np.abs(np.hypot(yy - cy, xx - cx) - 2.5),
        ]
        img = (strokes[r.class_index] < 0.8 + self.style).astype(float)
        img = img * (1 - 0.4 * self.style) + 0.4 * self.style * (np.cos(2 * xx) > 0)
        img = np.clip(img + rng.normal(0, 0.25, img.shape), 0, 1)
        return np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2)

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        return np.stack([self._one(r) for r in requests])


class PixelModel:
    """A saved multinomial logistic regression on gray pixels, queried like any suspect."""

    label_names = None
    returns = "probabilities"
    batch_size = 256
    cost = QueryCost()

    def __init__(self, model_dir: Path) -> None:
        with np.load(Path(model_dir) / "weights.npz") as f:
            self.coef, self.intercept = f["coef"], f["intercept"]
        self.identity = {"model": "pixel-logistic", "weights": self.coef.round(6).tobytes().hex()[:64]}

    def predict(self, images: np.ndarray) -> Answers:
        logits = images[..., 0].reshape(len(images), -1) / 255.0 @ self.coef.T + self.intercept
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return Answers(p.argmax(axis=1), p)


class PixelTrainer:
    identity = {"trainer": "pixel-logistic"}

    def train(self, images: np.ndarray, labels: np.ndarray, task: Task, out_dir: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=0.5, max_iter=300).fit(
            images[..., 0].reshape(len(images), -1) / 255.0, labels
        )
        np.savez(out_dir / "weights.npz", coef=model.coef_, intercept=model.intercept_)

    def open(self, model_dir: Path, task: Task) -> PixelModel:
        return PixelModel(model_dir)


class TestSources:
    @hookimpl
    def trainprove_generators(self) -> list[GeneratorSpec]:
        return [
            GeneratorSpec(
                "glyphs", lambda s: Glyphs(s["style"]), "strokes (tests)", (Option("style", "float", 0.0),)
            )
        ]

    @hookimpl
    def trainprove_shadow_trainers(self) -> list[ShadowTrainerSpec]:
        return [ShadowTrainerSpec("pixel-logistic", lambda s: PixelTrainer(), "logistic regression (tests)")]

    @hookimpl
    def trainprove_suspect_adapters(self) -> list[SuspectAdapterSpec]:
        spec = SuspectAdapterSpec(
            "pixel-logistic",
            lambda s, task: PixelModel(s["model_dir"]),
            "saved logistic regression (tests)",
            (Option("model_dir", "path"),),
        )
        return [spec]


SOURCES = ["moved", "textured"]
SOURCE_SETTINGS = {"moved": {"use": "glyphs", "style": 0.6}, "textured": {"use": "glyphs", "style": 1.0}}
AUDIT = {
    "seed": 3,
    "task": {"classes": ["hbar", "vbar", "diag", "ring"], "image_size": 8},
    "generator": {"use": "glyphs", "style": 0.0},
    "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "pixel-logistic"},
    "validation": {"prompt": "a photo of a {label}", "per_class": 60, "batch_size": 20},
    "suspect": [{"name": "unused", "use": "pixel-logistic", "model_dir": "nowhere"}],
    "test": [{"use": "meta-classifier", "sources": SOURCES, "source_settings": SOURCE_SETTINGS}],
}


@pytest.fixture(scope="module")
def audit(tmp_path_factory) -> dict[str, Any]:
    plugins = isolated_plugins((TestSources(), "glyph-sources"), (plugin, "trainprove-baselines"))
    config = config_from_dict(AUDIT, plugins)
    executor = plugins.get("executor", "local").spec.factory({})
    ws = Workspace(
        config.task, plugins, Store(tmp_path_factory.mktemp("store")), executor, show_progress=False
    )
    ws.config = config  # what run_audit should set: the audit a test is part of (see the report)
    generator = ws.generator(config.generator)
    validation = ws.image_set("validation", generator, config.validation)
    shadow, _ = ws.shadow_model(config.trainer, ws.image_set("shadow", generator, config.shadow))
    shadow_answers, _ = ws.answers("shadow", shadow, validation)
    batches = validation_batches(len(validation), config.validation.batch_size, config.validation.seed)

    def evidence(style: float, seed: int, workspace: Any = ws) -> Evidence:
        source = ws.generator(ws.plugin_table("generator", "glyphs", {"style": style}))
        model, _ = ws.shadow_model(
            config.trainer, ws.image_set("suspect", source, ImageSetConfig("{label}", 40, seed))
        )
        answers, _ = ws.answers(f"suspect {style} {seed}", model, validation)
        return Evidence(
            config.task, validation.labels, batches, shadow_answers, answers, f"s{style}", workspace
        )

    return {"ws": ws, "evidence": evidence, "config": config, "plugins": plugins}


def test_meta_classifier_tells_same_source_suspects_from_others(audit):
    table = audit["config"].tests[0].test  # built from the audit file, as run_audit does
    test = audit["plugins"].get("test", table.use).spec.factory(table.settings)
    same = test.decide(audit["evidence"](0.0, 101))
    other = test.decide(audit["evidence"](1.0, 102))
    assert same.decision == "trained-on-generator", same.explanation
    assert other.decision == "not-trained-on-generator", other.explanation
    assert same.details["score"] > 0.5 > other.details["score"]
    assert same.n == 9 and same.details["loo_accuracy"] >= 0.75 and same.details["with_probabilities"]
    assert "3 shadow models on glyphs and 6 on moved, textured" in same.explanation


def test_meta_classifier_fits_once_per_audit_and_reuses_cached_models(audit):
    test = MetaClassifierTest(SOURCES, SOURCE_SETTINGS, shadows_per_source=2)
    ws = audit["ws"]
    test.decide(audit["evidence"](0.0, 103))
    models = len(list((ws.store.root / "models").iterdir()))
    test.decide(audit["evidence"](0.6, 104))
    assert len(test._fitted) == 1
    assert len(list((ws.store.root / "models").iterdir())) == models + 1  # only the new suspect was trained


def test_meta_classifier_abstains_without_a_workspace_or_a_signal(audit):
    test = MetaClassifierTest(SOURCES, SOURCE_SETTINGS)
    v = test.decide(audit["evidence"](0.0, 101, workspace=None))
    assert v.decision == "inconclusive" and "Evidence.workspace.config" in v.explanation
    # A "source" that draws the very images of the defender's style (same style, other seed offsets):
    # the classifier cannot tell its shadows apart, and says so instead of guessing.
    lookalike = MetaClassifierTest(
        ["twin"], {"twin": {"use": "glyphs", "style": 0.0001}}, shadows_per_source=3
    )
    v = lookalike.decide(audit["evidence"](0.0, 101))
    assert v.decision == "inconclusive" and "leave-one-out accuracy only" in v.explanation


def test_meta_classifier_refuses_the_audits_own_generator_as_a_source(audit):
    test = MetaClassifierTest(["twin"], {"twin": {"use": "glyphs", "style": 0.0}})
    with pytest.raises(ConfigError, match="'twin' is the audit's own generator"):
        test.decide(audit["evidence"](0.0, 101))
