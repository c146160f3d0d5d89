"""The core's tiny test kit: real image sources and a real model, cheap enough for unit tests.

Not fakes. Two class-conditional sources drawn with numpy, each `style` its own house style, so
classifiers learn the task and sources differ:

- `glyphs` (8 px): class c is one of four strokes (hbar, vbar, diag, ring) at a jittered position; style
  moves, thickens and textures it.
- `shapes` (16 px): class c is one of five shapes (disc, ring, hbar, vbar, square) at a random position and
  size; at style 1 they are drawn dark on light over a striped texture.

Both take `noise`, `batch_size`, `delay` (seconds to sleep per chunk, to interrupt runs in tests) and `log`
(a file the seed of every generated image is appended to, to count what a resumed run skipped).
`pixel-logistic` is a multinomial logistic regression on pixels, trained, saved to a directory and loaded
back like any shadow model, and usable as a suspect. Register `GlyphPlugin()` in an isolated plugin set
(`trainprove_core.testing.isolated_plugins`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


class Drawn:
    """A source that draws image i from request i's seed alone: `draw(rng, class_index)` gives gray values
    in [0, 1], to which pixel noise is added."""

    name = ""
    native_size = 0

    def __init__(
        self, style: float, noise: float, batch_size: int, delay: float = 0.0, log: str | None = None
    ) -> None:
        self.style, self.noise, self.batch_size, self.delay, self.log = style, noise, batch_size, delay, log
        self.identity = {"generator": self.name, "style": style, "noise": noise}

    def draw(self, rng: np.random.Generator, class_index: int) -> np.ndarray:
        raise NotImplementedError

    def _one(self, r: GenerationRequest) -> np.ndarray:
        rng = np.random.default_rng(r.seed)
        img = self.draw(rng, r.class_index)
        img = np.clip(img + rng.normal(0, self.noise, img.shape), 0, 1)
        return np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2)

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        if self.log:
            with open(self.log, "a") as f:
                f.write("".join(f"{r.seed}\n" for r in requests))
        time.sleep(self.delay)
        return np.stack([self._one(r) for r in requests])


class Glyphs(Drawn):
    """Class c is one of four strokes at a jittered position; `style` moves, thickens and textures it."""

    name = "glyphs"
    native_size = 8

    def draw(self, rng: np.random.Generator, class_index: int) -> np.ndarray:
        yy, xx = np.mgrid[0:8, 0:8].astype(float)
        cy, cx = 3.5 + rng.normal(0, 0.7, 2) + self.style
        strokes = [
            np.abs(yy - cy),
            np.abs(xx - cx),
            np.abs(yy - xx - cy + cx),
            np.abs(np.hypot(yy - cy, xx - cx) - 2.5),
        ]
        img = (strokes[class_index] < 0.8 + self.style).astype(float)
        return img * (1 - 0.4 * self.style) + 0.4 * self.style * (np.cos(2 * xx) > 0)


class Shapes(Drawn):
    """Class c is a shape (disc, ring, bar, ...) at a random position and size; at style 1 the shapes are
    drawn dark on light, over a striped texture."""

    name = "shapes"
    native_size = 16

    def draw(self, rng: np.random.Generator, class_index: int) -> np.ndarray:
        s = self.native_size
        yy, xx = np.mgrid[0:s, 0:s]
        cy, cx = rng.uniform(5, s - 5, size=2)
        radius = rng.uniform(3, 5)
        dist = np.hypot(yy - cy, xx - cx)
        shape = [
            dist < radius,
            np.abs(dist - radius) < 1.2,
            np.abs(yy - cy) < 1.5 + 0 * xx,
            np.abs(xx - cx) < 1.5 + 0 * yy,
            (np.abs(yy - cy) < radius) & (np.abs(xx - cx) < radius),
        ]
        img = shape[class_index % len(shape)].astype(float)
        return np.abs(self.style - img) * (1 - 0.3 * self.style) + self.style * 0.3 * (np.sin(xx) > 0)


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


def _source_options(noise: float, batch_size: int) -> tuple[Option, ...]:
    return (
        Option("style", "float", 0.0, help="strength of this source's house style"),
        Option("noise", "float", noise, min=0, help="pixel noise"),
        Option("batch_size", "int", batch_size, min=1, help="images per chunk"),
        Option("delay", "float", 0.0, min=0, help="seconds to sleep per chunk (to interrupt runs in tests)"),
        Option("log", "str", None, help="file to which the seed of every generated image is appended"),
    )


def _maker(source: type[Drawn]) -> Any:
    def make(settings: Mapping[str, Any]) -> Drawn:
        return source(**settings)

    return make


class GlyphPlugin:
    """Registers the generators `glyphs` and `shapes`, and `pixel-logistic` (shadow trainer and suspect
    adapter)."""

    @hookimpl
    def trainprove_generators(self) -> list[GeneratorSpec]:
        return [
            GeneratorSpec(
                "glyphs", _maker(Glyphs), "strokes drawn with numpy (tests)", _source_options(0.25, 64)
            ),
            GeneratorSpec(
                "shapes",
                _maker(Shapes),
                "class-conditional shapes drawn with numpy (tests)",
                _source_options(0.1, 32),
            ),
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
            (Option("model_dir", "path", help="directory holding weights.npz"),),
        )
        return [spec]
