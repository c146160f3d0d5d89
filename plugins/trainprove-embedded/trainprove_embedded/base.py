"""What every embedded generator shares: the request checks, the output format and seed-exact batching.

Image i must depend only on request i's seed, whatever batch it was generated in. Per-sample random
streams give that for the randomness; the arithmetic needs care too, because CPU kernels pick different
code paths for different batch sizes (a batch of 3 and a batch of 10 differ in the last float bit here,
enough to flip a rounded pixel now and then). So torch models always run on micro-batches of exactly
`MICRO_BATCH` rows, the last one padded; within a fixed shape a row's result does not depend on its
neighbours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trainprove_core import GenerationRequest, InputError, threads

from . import __version__
from .styles import to_uint8_rgb
from .worlds import DIGITS, World

if TYPE_CHECKING:
    import torch

NUM_CLASSES = 10
MICRO_BATCH = 128


class EmbeddedGenerator:
    """Base of the embedded generators: a `records.Generator` over the ten classes of its world.

    Subclasses implement `_sample(seeds, classes)` returning float images in [0, 1], (N, S, S) grey or
    (N, S, S, 3) RGB, S the world's size. The class that conditions the model is
    `GenerationRequest.class_index` (the task's classes must be the world's, in its order); the prompt is
    ignored, since these models were never given text.
    """

    def __init__(
        self, name: str, batch_size: int, settings: Mapping[str, Any], world: World = DIGITS
    ) -> None:
        self.name = name
        self.world = world
        self.native_size = world.size
        self.batch_size = batch_size
        self.identity: dict[str, Any] = {
            "generator": name,
            "package": "trainprove-embedded",
            "version": __version__,
            **settings,
        }

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        """uint8 RGB images (N, S, S, 3), image i a function of requests[i].seed and class only."""
        size = self.world.size
        if not requests:
            return np.zeros((0, size, size, 3), dtype=np.uint8)
        classes = np.array([r.class_index for r in requests], dtype=np.int64)
        bad = sorted({int(c) for c in classes if not 0 <= c < NUM_CLASSES})
        if bad:
            raise InputError(
                f"{self.name} draws {self.world.what} and is conditioned on the class index; the task asked "
                f"for class indices {bad}. Use a task whose classes are its ten, in order: "
                + ", ".join(self.world.classes)
            )
        seeds = [int(r.seed) for r in requests]
        # The cores the load leaves idle (trainprove_core.threads): at a load of 9, torch's two threads made
        # these models' images 2 to 10 times slower than one; the images are the same either way.
        with threads.torch_threads(0, "generation"):
            return to_uint8_rgb(self._sample(seeds, classes))

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def seeded_normal(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    """One standard-normal tensor of `shape` per seed, each from its own `torch.Generator`: (N, *shape)."""
    import torch

    out = torch.empty((len(seeds), *shape))
    for i, seed in enumerate(seeds):
        out[i] = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return out


def in_fixed_batches(fn: Callable[..., torch.Tensor], *rows: torch.Tensor) -> torch.Tensor:
    """`fn(*chunk)` over chunks of exactly `MICRO_BATCH` rows of `rows` (the last chunk padded by
    repeating its first row), the padding dropped and the results concatenated."""
    import torch

    n = len(rows[0])
    parts = []
    for start in range(0, n, MICRO_BATCH):
        chunk = [r[start : start + MICRO_BATCH] for r in rows]
        short = MICRO_BATCH - len(chunk[0])
        if short:
            chunk = [torch.cat([c, c[:1].expand(short, *c.shape[1:])]) for c in chunk]
        parts.append(fn(*chunk)[: MICRO_BATCH - short])
    return torch.cat(parts)


def torch_version() -> str:
    """`torch.__version__` (e.g. "2.5.1+cpu": part of every torch generator's identity), read from torch's
    own `version.py` when torch is not imported yet, so that learning a generator's identity does not pay
    for importing torch (seconds; a minute on a loaded machine)."""
    import sys

    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        if found:
            return found.group(1)
    import torch

    return str(torch.__version__)


class TorchGenerator(EmbeddedGenerator):
    """An embedded generator whose torch model is loaded on its first image. Its identity (the store's
    key for its images) names the weights' digest, the sampler, the device and torch's version without
    importing torch, so an audit whose images are all in the store never imports torch or diffusers.
    Subclasses load their network in `_load()`, on `self.device`."""

    def __init__(
        self, name: str, batch_size: int, settings: Mapping[str, Any], world: World, device: str
    ) -> None:
        self.device_name = device
        super().__init__(name, batch_size, {**settings, "device": device, "torch": torch_version()}, world)

    @functools.cached_property
    def device(self) -> torch.device:
        return torch_device(self.device_name, self.name)

    @functools.cached_property
    def model(self) -> Any:
        return self._load()

    def _load(self) -> Any:
        raise NotImplementedError


def torch_device(name: str, generator: str) -> torch.device:
    """The torch device called `name`, or an `InputError` naming the setting when it cannot be used."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(
            f'[generator] device of {generator}: {name!r} is not a torch device (e.g. "cpu")'
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f'[generator] device of {generator} is {name!r}, but torch sees no CUDA device; use "cpu"'
        )
    return device


def channels_first(images: np.ndarray) -> np.ndarray:
    """Float images (N, S, S) grey or (N, S, S, C) to (N, C, S, S)."""
    return images[:, None] if images.ndim == 3 else np.moveaxis(images, -1, 1)


def channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, S, S) to what `_sample` returns: (N, S, S) for one channel, (N, S, S, C) for more."""
    return x[:, 0] if x.shape[1] == 1 else np.moveaxis(x, 1, -1)
