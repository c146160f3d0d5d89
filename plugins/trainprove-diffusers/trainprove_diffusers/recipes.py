"""The paper's prompt recipes, as data.

The defender's two sets use one template each (`SHADOW_PROMPT`, `VALIDATION_PROMPT`; `{label}` is the class
name, as in an audit file's `prompt`). Suspects in the paper's evaluation were trained on images made with
the recipe of "Diversity is Definitely Needed" (Shipard et al., 2023), as the released `create_dataset.py`
does it, in three equal parts per class:

1. `class-name`: the bare class name;
2. `multidomain`: "a {domain} of a {label}", the part's images split evenly over ten domains;
3. `random-scale`: "an image of a {label}", with one guidance scale per class drawn from the integers 1..5.

`suspect_recipe` spells that out for a task so a benchmark can build suspects the way the paper did; a
`DiffusersGenerator.variant(guidance=...)` makes the random-scale part without loading the model twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

SHADOW_PROMPT = "a {label}"
VALIDATION_PROMPT = "a photo of a {label}"

DOMAINS = (
    "photo",
    "drawing",
    "painting",
    "sketch",
    "collage",
    "poster",
    "digital art image",
    "rock drawing",
    "stick figure",
    "3D rendering",
)
CLASS_NAME_PROMPT = "{label}"
DOMAIN_PROMPT = "a {domain} of a {label}"
RANDOM_SCALE_PROMPT = "an image of a {label}"
RANDOM_SCALE_RANGE = (1, 5)


@dataclass(frozen=True)
class SuspectPrompt:
    """`images` images of class `class_index` from `prompt`; `guidance` None means the generator's own."""

    class_index: int
    class_name: str
    part: str
    prompt: str
    images: int
    guidance: float | None = None


def suspect_recipe(classes: Sequence[str], per_part: int, seed: int) -> list[SuspectPrompt]:
    """The suspect training set of the paper's evaluation: `per_part` images per class in each of the three
    parts (so 3 x `per_part` per class; the released code used 400 for CIFAR-10's 4,000-image setting).

    The multidomain part makes `per_part // 10` images per domain, as the released code does. Each class's
    guidance scale is drawn from `random.Random` seeded with (`seed`, class name), so it does not depend on
    the order or number of classes.
    """
    recipe = []
    low, high = RANDOM_SCALE_RANGE
    for i, label in enumerate(classes):
        recipe.append(SuspectPrompt(i, label, "class-name", CLASS_NAME_PROMPT.format(label=label), per_part))
        recipe.extend(
            SuspectPrompt(
                i, label, "multidomain", DOMAIN_PROMPT.format(domain=d, label=label), per_part // len(DOMAINS)
            )
            for d in DOMAINS
        )
        scale = random.Random(f"{seed}:{label}").randint(low, high)
        recipe.append(
            SuspectPrompt(
                i, label, "random-scale", RANDOM_SCALE_PROMPT.format(label=label), per_part, float(scale)
            )
        )
    return recipe
