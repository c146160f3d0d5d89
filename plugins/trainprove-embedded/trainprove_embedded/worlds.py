"""The worlds the embedded generators draw: what their images are (classes, size, colour).

- `digits`: scikit-learn's handwritten digits, 8x8 grey, the fast default.
- `fashion`: Fashion-MNIST (Zalando's clothing photographs, 28x28 grey), rendered at 16x16 in colour:
  each generator is trained on the images drawn in its own RGB house style (palette, texture, contrast,
  background, framing), the way text-to-image models differ.

A generator's name starts with its world's name (`fashion-ddpm`). This module imports nothing heavy: the
plugin's entry point reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class World:
    name: str
    classes: tuple[str, ...]
    """The task's classes, in the index order the models are conditioned on."""
    size: int
    """Native image side in pixels."""
    channels: int
    """1: grey (replicated to RGB on output), 3: RGB."""
    what: str
    """What the images are, for messages."""

    @property
    def pixels(self) -> int:
        return self.size * self.size * self.channels

    def model(self, kind: str) -> str:
        """The generator name of `kind` (`ddpm`, `vae`, ...) in this world."""
        return f"{self.name}-{kind}"


DIGITS = World(
    "digits",
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    8,
    1,
    "the digits 0..9",
)
FASHION = World(
    "fashion",
    # Fashion-MNIST's labels 0..9 in the standard order ("T-shirt/top" renamed: a slash cannot name an
    # export folder).
    (
        "t-shirt or top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
    16,
    3,
    "Fashion-MNIST's ten clothing classes",
)
WORLDS = {w.name: w for w in (DIGITS, FASHION)}


def world_of(generator: str) -> World:
    """The world of an embedded generator's name (`fashion-vae` -> FASHION)."""
    return WORLDS[generator.split("-", 1)[0]]
