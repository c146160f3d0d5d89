"""The demo's setting: which generators defend, which suspects are audited, and the audit of each defender.

A miniature of the paper's protocol. Four embedded digit generators stand in for the four text-to-image
models; real digits are the fifth source. The same setting runs in the fashion world (`WORLDS`): four
embedded generators of 16x16 RGB Fashion-MNIST, each trained in its own colour house style, and
Fashion-MNIST's real test images. Each suspect is a timm classifier trained, with its own
architecture and hyper-parameters, on images from one source; an audit with generator G as the defender
should call exactly the suspects trained on G's images "trained-on-generator". The benchmark of decision
rules (bench/decision_tests.py) uses the same pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainprove_core import ImageSetConfig, Workspace
from trainprove_core.fleet import OTHER_GENERATORS, expand

DEFENDERS = ("digits-ddpm", "digits-cfg", "digits-vae", "digits-gmm")
REAL = "digits-real"
SOURCES = DEFENDERS + (REAL,)
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 16
SEED = 2025

# The suspect's data follows its own recipe (the paper: different prompts from the defender's), and its
# training differs from the shadow's: other architectures, learning rates, batch sizes, seeds.
SUSPECT_SET = {"prompt": "an image of a {label}", "per_class": 120}
SUSPECT_VARIANTS = (
    {
        "arch": "test_resnet",
        "epochs": 12,
        "batch_size": 64,
        "lr": 3e-3,
        "weight_decay": 0.05,
        "train_seed": 11,
    },
    {
        "arch": "test_efficientnet",
        "epochs": 12,
        "batch_size": 128,
        "lr": 5e-3,
        "weight_decay": 0.01,
        "train_seed": 12,
    },
)
AUGMENT = {"hflip": False, "crop_scale": [0.7, 1.0]}  # digits must not be mirrored
# Suspects unlike the shadow's own kind (a few of the benchmark's conditions, docs/bench-pool.md), so the
# demo shows where TrainProVe fails and what the calibrated rule does there: for each defender a model
# trained on a fifth its images and four fifths real ones (`mix-real-20`), and one barely trained model
# (`under-trained`: one epoch at a tenth of the learning rate), which no rule should clear.
MIXTURE_SHARE = 0.2
UNDER_TRAINED = {"epochs": 1, "lr": 3e-4, "train_seed": 31}
SHADOW = {
    "prompt": "a {label}",
    "per_class": 100,
    "trainer": "timm",
    "arch": "test_resnet",
    "epochs": 12,
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "seed": 0,
    **AUGMENT,
}
VALIDATION = {"prompt": "a photo of a {label}", "per_class": 160, "batch_size": 64}  # n = 25 batches
# The demo's calibrated rule: six strong recipes (seed, architecture, half the epochs on half the
# generator's images, stronger crops on fewer images with a quarter share, and two guilty-only ones: another
# architecture on a half share, another seed on a quarter share) and four under-trained guilty ones
# (`weak`: compared on the gap, not the absolute error; three train the guilty model only), references =
# the other sources. Six strong guilty models, not four: clearing is a t prediction bound on them, and with
# 3 degrees of freedom a suspect had to lie 2.63 of their spreads below their mean (2.18 with 5), which
# left innocent suspects at chance on the defender's images uncleared (p_guilty 0.053-0.088).
CALIBRATED_RECIPES = {
    "seed": {"train_seed": 101},
    "architecture": {"train_seed": 102, "arch": "test_efficientnet", "batch_size": 128, "lr": 5e-3},
    "short-half": {"train_seed": 103, "epochs": 6, "lr": 6e-3, "share": 0.5},
    "crops-quarter": {"train_seed": 104, "crop_scale": [0.5, 1.0], "per_class_factor": 0.5, "share": 0.25},
    "half-efficientnet": {
        "train_seed": 109,
        "arch": "test_efficientnet",
        "batch_size": 128,
        "lr": 5e-3,
        "share": 0.5,
        "innocent": False,
    },
    "quarter-seed": {"train_seed": 110, "share": 0.25, "innocent": False},
    "under-trained": {"train_seed": 105, "epochs": 2, "weak": True},
    "under-trained-2": {"train_seed": 106, "epochs": 2, "weak": True, "innocent": False},
    "under-trained-3": {"train_seed": 107, "epochs": 3, "weak": True, "innocent": False},
    "under-trained-half": {
        "train_seed": 108,
        "epochs": 3,
        "per_class_factor": 0.5,
        "weak": True,
        "innocent": False,
    },
}


# TrainProVe as the paper has it, and the calibrated rule with the other sources as references (the other
# candidates, then real digits).
TESTS = (
    {"use": "trainprove"},
    {"use": "calibrated", "references": [OTHER_GENERATORS, REAL], "recipes": CALIBRATED_RECIPES},
)


def _tests(w: DemoWorld) -> tuple[dict[str, Any], ...]:
    """`TESTS` with the world's real source among the calibrated rule's references."""
    return tuple(
        {**t, "references": [OTHER_GENERATORS, w.real]} if t["use"] == "calibrated" else dict(t)
        for t in TESTS
    )


@dataclass(frozen=True)
class DemoWorld:
    """One world of the demo: its defenders, its real source, the task."""

    name: str
    defenders: tuple[str, ...]
    real: str
    classes: tuple[str, ...]
    image_size: int = IMAGE_SIZE
    augment: dict[str, Any] = field(default_factory=lambda: dict(AUGMENT))

    @property
    def sources(self) -> tuple[str, ...]:
        return self.defenders + (self.real,)

    def short(self, generator: str) -> str:
        """`digits-ddpm` -> `ddpm`: the name in tables and suspect names."""
        return generator.removeprefix(f"{self.name}-")


WORLDS = {
    "digits": DemoWorld("digits", DEFENDERS, REAL, CLASSES),
    # The four model kinds (diffusion, guided diffusion, VAE, GAN) in their colour house styles; crops
    # without flips, as for digits (shoes all face one way in Fashion-MNIST).
    "fashion": DemoWorld(
        "fashion",
        ("fashion-ddpm", "fashion-cfg", "fashion-vae", "fashion-gan"),
        "fashion-real",
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
    ),
}
"""The demo's worlds by name (`trainprove demo --world NAME`)."""


@dataclass(frozen=True)
class Suspect:
    name: str
    source: str
    checkpoint: Path


def generator_table(name: str, hard: bool) -> dict[str, Any]:
    """The `[generator]` table of an embedded generator; `hard` picks the weights trained without styles."""
    table: dict[str, Any] = {"use": name}
    if hard and name not in {w.real for w in WORLDS.values()}:
        table["house_style"] = False
    return table


def pool_size(world: str = "digits") -> int:
    """How many suspects `build_pool` trains for `world`."""
    w = WORLDS[world]
    return len(w.sources) * len(SUSPECT_VARIANTS) + len(w.defenders) + 1


def build_pool(
    ws: Workspace, hard: bool, world: str = "digits", trainer: Mapping[str, Any] | None = None
) -> list[Suspect]:
    """Train (or take from the store) every suspect of `world`'s pool; return where their checkpoints are.
    `trainer`: timm trainer settings that every suspect's training takes on top of its own."""
    w = WORLDS[world]
    extra = {**w.augment, **(trainer or {})}
    pairs, suspects, sets = [], [], {}
    for s, source in enumerate(w.sources):
        settings = {k: v for k, v in generator_table(source, hard).items() if k != "use"}
        generator = ws.generator(ws.plugin_table("generator", source, settings))
        sets[source] = images = ws.image_set(
            f"suspects-{source}",
            generator,
            ImageSetConfig(SUSPECT_SET["prompt"], SUSPECT_SET["per_class"], seed=SEED * 10 + s),
        )
        for v, variant in enumerate(SUSPECT_VARIANTS):
            pairs.append((ws.plugin_table("shadow-trainer", "timm", {**variant, **extra}), images))
            suspects.append((f"{w.short(source)}-{variant['arch'].removeprefix('test_')}-{v}", source))
    resnet = {**SUSPECT_VARIANTS[0], **extra}
    for d, defender in enumerate(w.defenders):
        mixed = ws.mixture(
            sets[defender],
            [sets[w.real]],
            MIXTURE_SHARE,
            SUSPECT_SET["per_class"],
            (SEED, "demo mix", d),
            role=f"suspects-{defender} mixture",
        )
        table = ws.plugin_table("shadow-trainer", "timm", {**resnet, "train_seed": 21 + d})
        pairs.append((table, mixed))
        suspects.append((f"{w.short(defender)}-mix20-resnet", defender))
    first = w.defenders[0]
    pairs.append((ws.plugin_table("shadow-trainer", "timm", {**resnet, **UNDER_TRAINED}), sets[first]))
    suspects.append((f"{w.short(first)}-under-trained-resnet", first))
    # All at once: an executor that runs work in parallel (`[executor] use = "ray"`) trains them together.
    made = ws.trained_models(pairs)
    for m in made:
        if isinstance(m, Exception):
            raise m
    return [Suspect(name, source, m[0]) for (name, source), m in zip(suspects, made, strict=True)]


def fleet_document(
    pool: list[Suspect],
    hard: bool,
    tests: tuple[Mapping[str, Any], ...] | None = None,
    executor: str | None = None,
    world: str = "digits",
) -> dict[str, Any]:
    """The fleet file (as a dict) of `world`'s demo: every defender a candidate, the whole pool its
    suspects, each with the source it was trained on as its truth, attributed by the calibrated rule."""
    w = WORLDS[world]
    doc: dict[str, Any] = {
        "seed": SEED,
        "fleet": {"known_sources": [w.real]},
        "task": {"classes": list(w.classes), "image_size": w.image_size},
        "generator": [generator_table(d, hard) for d in w.defenders],
        "shadow": {**SHADOW, **w.augment},
        "validation": dict(VALIDATION),
        "suspect": [
            {"name": s.name, "use": "timm", "checkpoint": str(s.checkpoint), "truth": s.source} for s in pool
        ],
        "test": [dict(t) for t in (tests if tests is not None else _tests(w))],
    }
    if tests is None:  # the rule that abstains rather than accuse wrongly
        doc["fleet"]["attribute_by"] = "calibrated"
    if executor is not None:
        doc["executor"] = {"use": executor}
    return doc


def audit_document(
    defender: str,
    pool: list[Suspect],
    hard: bool,
    tests: tuple[Mapping[str, Any], ...] | None = None,
    world: str = "digits",
) -> dict[str, Any]:
    """The audit file (as a dict) of `defender` auditing the whole pool, with each suspect's truth: its
    audit in the demo's fleet."""
    fleet = expand(fleet_document(pool, hard, tests, world=world))
    return next(a.document for a in fleet.audits if a.generator == defender)
