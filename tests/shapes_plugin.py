"""A tiny, real image source for the core's tests: class-conditional shapes drawn with numpy.

Each class is a shape (disc, ring, bar, ...) at a random position and size; a `style` knob gives each
source its own look, so classifiers can learn the task and sources differ. It is cheap
enough for unit tests of the orchestration; the embedded demo uses learned generators instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import GenerationRequest, GeneratorSpec, Option


class Shapes:
    native_size = 16

    def __init__(
        self,
        style: float = 0.0,
        noise: float = 0.1,
        batch_size: int = 32,
        delay: float = 0.0,
        log: str | None = None,
    ) -> None:
        self.style = style
        self.noise = noise
        self.batch_size = batch_size
        self.delay = delay
        self.log = log
        self.identity = {"generator": "shapes", "style": style, "noise": noise}

    def _one(self, r: GenerationRequest) -> np.ndarray:
        rng = np.random.default_rng(r.seed)
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
        img = shape[r.class_index % len(shape)].astype(float)
        # The house style: at style 1 the shapes are drawn dark on light, over a striped texture.
        img = np.abs(self.style - img) * (1 - 0.3 * self.style) + self.style * 0.3 * (np.sin(xx) > 0)
        img = np.clip(img + rng.normal(0, self.noise, img.shape), 0, 1)
        return np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=2)

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        if self.log:  # lets tests count what was generated (and so what a resumed run skipped)
            with open(self.log, "a") as f:
                f.write("".join(f"{r.seed}\n" for r in requests))
        time.sleep(self.delay)
        return np.stack([self._one(r) for r in requests])


def _make(settings: Mapping[str, Any]) -> Shapes:
    return Shapes(**settings)


@hookimpl
def trainprove_generators() -> list[GeneratorSpec]:
    return [
        GeneratorSpec(
            "shapes",
            _make,
            "class-conditional shapes drawn with numpy (tests only)",
            (
                Option("style", "float", 0.0, help="strength of this source's house style"),
                Option("noise", "float", 0.1, help="pixel noise"),
                Option("batch_size", "int", 32, help="images per chunk"),
                Option("delay", "float", 0.0, help="seconds to sleep per chunk (to interrupt runs in tests)"),
                Option(
                    "log", "str", None, help="file to which the seed of every generated image is appended"
                ),
            ),
        )
    ]
