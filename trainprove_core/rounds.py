"""Sequential audits: the suspect is asked the validation set in rounds, and judged after each.

With `[validation] rounds = K`, every image set a suspect is asked about is split into K disjoint slices of
equal size, stratified by class (each slice holds 1/K of every class, in an order fixed by the set's key).
After round r the suspect has answered slices 1..r, and each decision test that is `sequential` judges
the answers so far (`Evidence.look`); the core stops asking once every test has decided.

The design is **group-sequential with a union-bound (Bonferroni) alpha spending**: a test that bounds an
error at `alpha` in the fixed design spends

    spend(alpha, r) = alpha * ((r / K) ** RHO - ((r - 1) / K) ** RHO)

at look r, and decides at that look only with its p-value below that share. The shares add up to alpha,
so whatever the dependence between looks (they are nested, so strongly dependent),

    P(some look errs) <= sum over r of P(look r errs) <= sum over r of spend(alpha, r) = alpha.

The union bound is conservative (a look that has seen half the data spends only a quarter of alpha at
RHO = 2), so a sequential audit decides later, or leaves more inconclusive, than an exact boundary would;
it is exact about the guarantee, for every test, with no model of how the looks correlate. RHO = 2 keeps
most of alpha for the late looks, where most suspects that are hard to judge are decided.

Each slice is its own cached answer set, so a stopped audit is extended (more rounds asked) by running it
again with tests that need more, paying only the slices not yet asked.
"""

from __future__ import annotations

import numpy as np

from .records import RHO, Answers, ImageSet, Look  # noqa: F401 - RHO and Look: the contract's (`Evidence.look`)
from .store import content_key, derive_seed


def slices(image_set: ImageSet, rounds: int) -> list[np.ndarray]:
    """The image indices of each of `rounds` slices of `image_set`: disjoint, 1/rounds of every class each,
    in an order that depends only on the set's key (the same slices in every audit of that set)."""
    return slices_of(image_set.labels, image_set.key, rounds)


def slices_of(labels: np.ndarray, key: str, rounds: int) -> list[np.ndarray]:
    """`slices` of images with these class `labels`, in an order drawn from `key`."""
    rng = np.random.default_rng(derive_seed("rounds", key, rounds))
    parts: list[list[np.ndarray]] = [[] for _ in range(rounds)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        for r, chunk in enumerate(np.array_split(members, rounds)):
            parts[r].append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def prefix(image_set: ImageSet, look: Look | None) -> np.ndarray:
    """The indices of the images answered by `look` (all of them when there are no looks)."""
    if look is None:
        return np.arange(len(image_set))
    return np.concatenate(slices(image_set, look.rounds)[: look.round])


def slice_set(image_set: ImageSet, rounds: int, r: int) -> ImageSet:
    """Slice `r` (0-based) of `rounds` as an image set of its own, cached under its own key."""
    index = slices(image_set, rounds)[r]
    identity = {"kind": "slice", "of": image_set.key, "rounds": rounds, "slice": r}
    return ImageSet(
        f"{image_set.role} (slice {r + 1}/{rounds})",
        content_key(identity),
        image_set.images[index],
        image_set.labels[index],
        identity,
    )


def subset(answers: Answers, index: np.ndarray) -> Answers:
    """The answers to the images at `index`."""
    probs = answers.probabilities
    return Answers(np.asarray(answers.labels)[index], None if probs is None else np.asarray(probs)[index])


def concat(parts: list[Answers]) -> Answers:
    probs = [p.probabilities for p in parts]
    return Answers(
        np.concatenate([np.asarray(p.labels) for p in parts]),
        None if any(p is None for p in probs) else np.concatenate(probs),
    )
