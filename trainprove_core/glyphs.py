"""A tiny, real image source and model, for testing decision tests end to end through the core.

Not a fake: `glyphs` draws class-conditional strokes with numpy, each `style` its own house style (moved,
thickened, textured), so classifiers learn the task and sources differ; `pixel-logistic` is a multinomial
logistic regression on pixels, trained, saved to a directory and loaded back like any shadow model. Both
are cheap enough for unit tests. Register `GlyphPlugin()` in an isolated plugin set
(`trainprove_core.testing.isolated_plugins`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import (
    Answers,
    GenerationRequest,
    GeneratorSpec,
    Option,
    QueryCost,
    ShadowTrainerSpec,
    SuspectAdapterSpec,
)
from trainprove_core.task import Task


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
        digest = hashlib.sha256((Path(model_dir) / "weights.npz").read_bytes()).hexdigest()
        self.identity = {"model": "pixel-logistic", "weights_sha256": digest}

    def predict(self, images: np.ndarray) -> Answers:
        logits = images[..., 0].reshape(len(images), -1) / 255.0 @ self.coef.T + self.intercept
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return Answers(p.argmax(axis=1), p)


class PixelTrainer:
    """Trains a `PixelModel` and saves it as plain arrays (no pickle)."""

    identity = {"trainer": "pixel-logistic"}

    def train(self, images: np.ndarray, labels: np.ndarray, task: Task, out_dir: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=0.5, max_iter=300).fit(
            images[..., 0].reshape(len(images), -1) / 255.0, labels
        )
        np.savez(out_dir / "weights.npz", coef=model.coef_, intercept=model.intercept_)

    def open(self, model_dir: Path, task: Task) -> PixelModel:
        return PixelModel(model_dir)


class GlyphPlugin:
    """Registers `glyphs` (generator), `pixel-logistic` (shadow trainer and suspect adapter)."""

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
