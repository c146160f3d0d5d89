"""TrainProVe-Ent and TrainProVe-Sim: the paper's two variants that read probability vectors.

Both use the Grubbs machinery of `grubbs.py` on another quantity:

- **Ent**: the mean prediction entropy (nats) of each validation batch. The shadow's n batch values are the
  sample; the suspect's mean over batches is tested on the *high* side (a model that never saw the
  generator's images is less sure of them).
- **Sim**: for each class, the mean pairwise cosine similarity (negatives clamped to 0) of the model's
  probability vectors over that class's validation images. The shadow's |C| class values are the sample;
  the suspect's mean over classes is tested on the *low* side (a model trained on the generator's images
  answers its images of one class alike).

Only probability vectors are available from a suspect, so "output vectors" are probabilities here (their
cosines are never negative; the clamp matters only if an adapter returns something signed).
"""

from __future__ import annotations

import numpy as np

from trainprove_core import (
    Evidence,
    Preconditions,
    Verdict,
    abstain,
    answered,
    batch_means,
    check_alpha,
    prediction_entropy,
)

from .trainprove import grubbs_verdict

ENTROPY = "mean prediction entropy per batch (nats)"
SIMILARITY = "mean pairwise cosine similarity of outputs within a class"


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """The mean cosine similarity over all pairs of rows, negative similarities counted as 0."""
    v = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.maximum(norms, 1e-12)
    k = len(v)
    if (v >= 0).all():
        # No negative similarity to clamp: the sum over ordered pairs i != j is |sum of rows|^2 minus the
        # squared norms, in O(k C) instead of the k x k matrix.
        total = float(np.sum(v.sum(axis=0) ** 2) - np.sum(v * v))
    else:
        sims = np.clip(v @ v.T, 0.0, None)
        total = float(sims.sum() - np.trace(sims))
    return total / (k * (k - 1))


def class_similarities(evidence: Evidence, probabilities: np.ndarray, mask: np.ndarray) -> dict[int, float]:
    """For each class with at least two answered validation images, its mean pairwise cosine similarity."""
    out: dict[int, float] = {}
    for c in range(evidence.task.num_classes):
        rows = np.flatnonzero(mask & (evidence.true_labels == c))
        if len(rows) >= 2:
            out[c] = mean_pairwise_cosine(probabilities[rows])
    return out


def _missing_probabilities(evidence: Evidence) -> str | None:
    # The core declines a probability test for a label-only model before calling it; this guards the
    # contract for callers that build evidence themselves (benchmarks, other front ends).
    if evidence.suspect.probabilities is None:
        return "it needs probabilities and this suspect answers labels only"
    if evidence.shadow.probabilities is None:
        return "it needs probabilities and the shadow model answers labels only"
    return None


class _ProbabilityGrubbs:
    """What the two probability variants share: alpha, the paper_compat switch and the preconditions."""

    needs = "probabilities"
    name = ""

    def __init__(
        self, alpha: float = 0.05, paper_compat: bool = False, preconditions: Preconditions | None = None
    ) -> None:
        check_alpha(alpha, self.name)
        self.alpha = alpha
        self.paper_compat = paper_compat
        self.preconditions = preconditions or Preconditions()
        self.preconditions.validate(self.name)


class EntropyTest(_ProbabilityGrubbs):
    """TrainProVe-Ent: Grubbs on the high side of the per-batch mean prediction entropy."""

    name = "trainprove-ent"

    def decide(self, evidence: Evidence) -> Verdict:
        reason = _missing_probabilities(evidence) or self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, self.name, reason, alpha=self.alpha, quantity=ENTROPY)
        shadow, suspect = (
            batch_means(evidence, prediction_entropy(a.probabilities), answered(a))
            for a in (evidence.shadow, evidence.suspect)
        )
        return grubbs_verdict(
            evidence,
            self.name,
            shadow,
            float(suspect.mean()),
            side="high",
            alpha=self.alpha,
            paper_compat=self.paper_compat,
            quantity=ENTROPY,
            unit="batches",
        )


class SimilarityTest(_ProbabilityGrubbs):
    """TrainProVe-Sim: Grubbs on the low side of the per-class mean pairwise cosine similarity."""

    name = "trainprove-sim"

    def decide(self, evidence: Evidence) -> Verdict:
        reason = _missing_probabilities(evidence) or self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, self.name, reason, alpha=self.alpha, quantity=SIMILARITY)
        shadow = class_similarities(evidence, evidence.shadow.probabilities, answered(evidence.shadow))
        suspect = class_similarities(evidence, evidence.suspect.probabilities, answered(evidence.suspect))
        if len(shadow) < 3 or not suspect:
            return abstain(
                evidence,
                self.name,
                f"only {len(shadow)} classes have two or more validation images the shadow answered and "
                f"{len(suspect)} the suspect answered; the test needs 3 classes for the shadow and 1 for the "
                "suspect",
                alpha=self.alpha,
                quantity=SIMILARITY,
            )
        sample = np.array([shadow[c] for c in sorted(shadow)])
        return grubbs_verdict(
            evidence,
            self.name,
            sample,
            float(np.mean(list(suspect.values()))),
            side="low",
            alpha=self.alpha,
            paper_compat=self.paper_compat,
            quantity=SIMILARITY,
            unit="classes",
        )
