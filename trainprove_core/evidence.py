"""What decision tests read from the evidence, and when they refuse to read anything into it: the helpers
every decision test shares (this distribution's own and any third party's).

Conventions:

- A label below 0 marks an image the model did not answer (a query budget cut short, a refused request).
  Accuracies and the other per-batch quantities are computed over the answered images only, and a test
  abstains when too few were answered.
- Every verdict that decides carries `details["score"]`: a number that grows with the evidence that the
  suspect *was* trained on the generator's images. Benchmarks rank suspects by it (AUC); it means nothing
  across tests.
- A test that will not decide returns `abstain(...)`: an `inconclusive` verdict whose `details["reason"]`
  says why (`details["declined"]` when it could not run at all on this kind of evidence).

Imports numpy; a plugin imports this module from its factories, never from its entry point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .records import Answers, Evidence, Verdict


def answered(answers: Answers) -> np.ndarray:
    """Boolean mask of the images the model answered (labels >= 0)."""
    return np.asarray(answers.labels) >= 0


def batch_means(evidence: Evidence, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean of `values` over the `mask`ed images of each validation batch; batches with no masked image
    are left out (they carry no information)."""
    index = np.concatenate(evidence.batches)
    batch_of = np.repeat(np.arange(len(evidence.batches)), [len(b) for b in evidence.batches])
    weight = mask[index].astype(float)
    totals = np.bincount(
        batch_of, weights=np.asarray(values, dtype=float)[index] * weight, minlength=len(evidence.batches)
    )
    counts = np.bincount(batch_of, weights=weight, minlength=len(evidence.batches))
    kept = counts > 0
    return totals[kept] / counts[kept]


def batch_accuracies(evidence: Evidence, answers: Answers) -> np.ndarray:
    """Accuracy of `answers` on each validation batch, over the images answered."""
    correct = (np.asarray(answers.labels) == evidence.true_labels).astype(float)
    return batch_means(evidence, correct, answered(answers))


def answered_batch_sizes(evidence: Evidence, answers: Answers) -> np.ndarray:
    """How many images of each validation batch `answers` covers (batches with none left out, as above)."""
    mask = answered(answers)
    sizes = np.array([np.count_nonzero(mask[b]) for b in evidence.batches], dtype=float)
    return sizes[sizes > 0]


def chance_accuracy(true_labels: np.ndarray) -> float:
    """The accuracy of always naming the validation set's most frequent class (1/C when balanced)."""
    counts = np.bincount(np.asarray(true_labels, dtype=np.int64))
    return float(counts.max() / counts.sum())


def check_fraction(name: str, value: float, test: str) -> None:
    """Raise ConfigError unless 0 <= value <= 1 (for options that are fractions)."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{test}: `{name}` must be between 0 and 1, got {value}", key="test")


def check_alpha(alpha: float, test: str) -> None:
    """Raise ConfigError unless 0 < alpha < 1."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"{test}: `alpha` must be strictly between 0 and 1, got {alpha}", key="test")


@dataclass(frozen=True)
class Preconditions:
    """When the evidence is too weak to test anything, a test says `inconclusive` instead of guessing.
    A field set to None is not checked.

    - `min_batches`: the shadow's spread is estimated from its batches; with fewer the estimate is
      unreliable. (The Grubbs tests need no such setting: they work out the smallest sample at which
      their alpha holds, see `grubbs.fewest_values`.)
    - `min_answered`: the fraction of validation queries the suspect must have answered. A suspect that
      answered only the images it found easy would otherwise look trained.
    - `min_shadow_margin`: how far above chance (the most frequent class's share) the shadow model must
      score on its own generator's validation images. A shadow near chance means the generator's images do
      not teach the task, so any suspect's accuracy on them is "in line with" the shadow's.
    """

    min_batches: int | None = None
    min_answered: float | None = 0.95
    min_shadow_margin: float | None = 0.1

    def validate(self, test: str) -> None:
        """Raise ConfigError for settings that make no sense."""
        if self.min_batches is not None and self.min_batches < 3:
            raise ConfigError(f"{test}: `min_batches` must be at least 3, got {self.min_batches}", key="test")
        for name in ("min_answered", "min_shadow_margin"):
            if getattr(self, name) is not None:
                check_fraction(name, getattr(self, name), test)

    def violated(self, evidence: Evidence) -> str | None:
        """The reason the evidence fails these preconditions, or None when it passes."""
        n_images = len(evidence.true_labels)
        if len(evidence.suspect) != n_images or len(evidence.shadow) != n_images:
            raise ValueError(
                f"evidence for {evidence.suspect_name!r} is inconsistent: {n_images} validation images, "
                f"{len(evidence.shadow)} shadow answers, {len(evidence.suspect)} suspect answers"
            )
        if self.min_batches is not None and len(evidence.batches) < self.min_batches:
            return (
                f"the validation set is cut into only {len(evidence.batches)} batches and this test needs at "
                f"least {self.min_batches} to estimate the shadow model's spread (lower [validation] "
                "batch_size or add validation images)"
            )
        n_answered = int(answered(evidence.suspect).sum())
        if self.min_answered is not None and n_answered < self.min_answered * n_images:
            return (
                f"the suspect answered only {n_answered} of {n_images} validation queries "
                f"(fewer than {self.min_answered:.0%}); a partial answer sheet can be biased toward easy "
                "images"
            )
        if self.min_shadow_margin is None:
            return None
        shadow_mask = answered(evidence.shadow)
        shadow_acc = float(np.mean(evidence.shadow.labels[shadow_mask] == evidence.true_labels[shadow_mask]))
        chance = chance_accuracy(evidence.true_labels)
        if shadow_acc < chance + self.min_shadow_margin:
            return (
                f"the shadow model scores {shadow_acc:.3f} on its own generator's validation images, within "
                f"{self.min_shadow_margin:.2f} of chance ({chance:.3f}): the generator's images do not teach "
                "the task well enough for any suspect's score on them to mean something (train the shadow "
                "longer, on more images, or check the prompts)"
            )
        return None


def abstain(
    evidence: Evidence, test: str, reason: str, *, alpha: float | None = None, quantity: str = ""
) -> Verdict:
    """An inconclusive verdict that says why the test would not decide."""
    return Verdict(
        suspect=evidence.suspect_name,
        test=test,
        decision="inconclusive",
        explanation=f"{evidence.suspect_name}: inconclusive; {reason}.",
        alpha=alpha,
        quantity=quantity,
        details={"reason": reason},
    )


def declined(suspect: str, test: str, reason: str) -> Verdict:
    """The verdict of a test that cannot run on this evidence at all (it needs probabilities, say)."""
    return Verdict(
        suspect,
        test,
        "inconclusive",
        f"{suspect}: {test} declined: {reason}.",
        details={"reason": reason, "declined": True},
    )


def prediction_entropy(probabilities: np.ndarray) -> np.ndarray:
    """The entropy (nats) of each row of a probability matrix; rows are renormalised first, so an adapter's
    rounding does not matter."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, None)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def binomial_sd_floor(accuracies: np.ndarray, batch_sizes: np.ndarray) -> float:
    """The smallest spread batch accuracies can honestly have: sqrt(p (1 - p) / m), with p a
    Laplace-smoothed error rate and m the mean batch size. A shadow model that scores 100% on every batch
    has s = 0, and without this floor every same-source suspect at 99.9% would be an "outlier"."""
    errors = float(np.sum((1.0 - accuracies) * batch_sizes))
    total = float(np.sum(batch_sizes))
    p = (errors + 1.0) / (total + 2.0)
    return math.sqrt(p * (1.0 - p) / float(np.mean(batch_sizes)))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided binomial confidence interval for a rate observed as k of n,
    through `scipy.stats.binomtest` (scipy is imported here, not with this module); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def clopper_pearson_lower(k: int, n: int, confidence: float = 0.999) -> float:
    """The one-sided exact lower confidence bound for a rate observed as k of n: if the true rate were at
    most this, seeing k or more would happen with probability at most 1 - confidence (`binomtest` with
    `alternative="greater"`); 0 for n = 0."""
    if n == 0:
        return 0.0
    from scipy import stats

    test = stats.binomtest(k, n, alternative="greater")
    return float(test.proportion_ci(confidence_level=confidence, method="exact").low)
