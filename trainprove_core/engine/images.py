"""Image sets: what a generator makes for an audit, seeded per image, cached in the store per chunk.

`image_requests` says which images a set holds (so a set resumes and regrows identically, and every command
that makes one makes the same images); `ImageSets.image_set` makes the missing chunks through the executor.
`validation_batches` is the paper's partition of the validation set into query batches.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..accounting import phase
from ..config import ImageSetConfig
from ..records import GenerationRequest, Generator, ImageSet, Outcome, Work
from ..store import content_key, derive_seed
from ..task import Task
from .jobs import Job, Jobs, raise_error


def preview_sheet(image_set: ImageSet, task: Task, path: Path, per_class: int = 8) -> None:
    """A PNG with `per_class` images of each class in a row, the class name on the left, a gap between
    images (enlarged so small images stay visible)."""
    from PIL import Image, ImageDraw

    scale = max(1, 64 // task.image_size)
    cell, gap = task.image_size * scale, 4
    label_width = 8 + 7 * max(len(c) for c in task.classes)
    width = label_width + per_class * (cell + gap) + gap
    height = task.num_classes * (cell + gap) + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(task.classes):
        top = gap + c * (cell + gap)
        draw.text((4, top + cell // 2 - 5), name, fill="black")
        for j, i in enumerate(np.flatnonzero(image_set.labels == c)[:per_class]):
            tile = Image.fromarray(image_set.images[i]).resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (label_width + gap + j * (cell + gap), top))
    sheet.save(path)


def image_requests(task: Task, cfg: ImageSetConfig) -> list[GenerationRequest]:
    """The requests of an image set, class by class in the task's order, `cfg.per_class` each: image j of a
    class is prompted with `cfg.prompt` for that class and seeded by (set seed, that prompt, j) only, so a
    set resumes and regrows identically, and every command that makes a set (an audit, `trainprove sample`)
    makes the same images from the same settings."""
    return [
        GenerationRequest(prompt, ci, name, derive_seed(cfg.seed, prompt, j))
        for ci, name in enumerate(task.classes)
        for prompt in [cfg.prompt.format(label=name)]
        for j in range(cfg.per_class)
    ]


def validation_batches(n_images: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The paper's partition of the validation set into n = ceil(N / batch_size) query batches.

    Images are shuffled with the set's seed so every batch mixes classes, and split into n batches of
    near-equal size (5,000 images at 128 give the paper's n = 40, of 125 each), so no batch is a tiny
    remainder whose accuracy would inflate the shadow's spread.
    """
    n = max(1, math.ceil(n_images / batch_size))
    order = np.random.default_rng(seed).permutation(n_images)
    return [np.sort(b) for b in np.array_split(order, n)]


class ImageSets(Jobs):
    """Image sets made through the executor and cached per chunk (a layer of `Workspace`)."""

    def image_set_identity(self, generator: Generator, cfg: ImageSetConfig) -> dict[str, Any]:
        """What keys the image set `image_set(role, generator, cfg)` returns (known before it is made)."""
        return {
            "kind": "image-set",
            "generator": dict(generator.identity),
            "prompt": cfg.prompt,
            "per_class": cfg.per_class,
            "seed": cfg.seed,
            "classes": list(self.task.classes),
            "image_size": self.task.image_size,
            "resize": "bilinear",
        }

    @phase("generation")
    def image_set(self, role: str, generator: Generator, cfg: ImageSetConfig) -> ImageSet:
        """`cfg.per_class` images of every class from `generator`, prompted with `cfg.prompt`."""
        requests = image_requests(self.task, cfg)
        identity = self.image_set_identity(generator, cfg)
        size = max(1, int(generator.batch_size))
        ref = self.model_ref(generator)
        desc = f"generate {role} set"
        works = [
            Work(
                "generate",
                ref,
                (requests[i : i + size], self.task.image_size),
                len(requests[i : i + size]),
                index,
                desc,
                local=generator,
            )
            for index, i in enumerate(range(0, len(requests), size))
        ]
        self._count("images", "image-sets", identity, [w.inputs[0] for w in works])

        def finish(work: Work, outcome: Outcome) -> dict[str, np.ndarray]:
            self._account(work, outcome)
            return outcome.value

        arrays = raise_error(self.run_jobs([Job("image-sets", identity, works, finish)], desc)[0])
        image_set = ImageSet(role, content_key(identity), arrays["images"], arrays["labels"], identity)
        self.observe("trainprove_after_generate", role=role, image_set=image_set)
        return image_set
