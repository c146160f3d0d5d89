"""Simulated audits, to measure how often a decision rule errs when the truth is known.

Two kinds of simulation, for the null-rate tests of decision rules (this repo's and third parties') and
`bench/decision_tests.py`:

- **The rule's own model** (in the tests): the values each rule assumes, e.g. for Grubbs n normal
  reference values and one more from the same normal. Under it a rule's stated alpha must hold.
- **A realistic audit** (`SimulatedAudit`): a validation set cut into batches; every model answers image i
  correctly with its own accuracy, independently (binomial batch correctness), and a wrong answer names a
  uniformly random other class. Suspects trained on the generator's images have the shadow's accuracy
  plus a per-suspect shift (architectures and recipes differ); suspects trained elsewhere are on average
  `gap` less accurate. Probability vectors are a softmax of unit normal logits with `confidence` added to
  the predicted class; a same-source suspect's confidence varies around the shadow's, an other-source
  suspect's is `confidence_gap` lower. None of these numbers come from the paper: they are a plausible
  setting, stated so a reader can judge it, and the tests use them as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainprove_core import rounds
from trainprove_core.records import Answers, Evidence, Verdict
from trainprove_core.task import Task


@dataclass(frozen=True)
class SimulatedAudit:
    """The setting of a simulated audit; `evidence` draws one suspect's evidence from it."""

    n_classes: int = 10
    n_batches: int = 40
    batch_size: int = 125
    shadow_accuracy: float = 0.90
    shift_sd: float = 0.01
    gap: float = 0.05
    confidence: float = 4.0
    confidence_sd: float = 0.25
    confidence_gap: float = 1.0

    @property
    def task(self) -> Task:
        return Task(tuple(f"class{i}" for i in range(self.n_classes)), 8)

    def suspect_accuracy(self, rng: np.random.Generator, trained: bool) -> float:
        """A suspect's true accuracy on the generator's images: the shadow's (trained) or `gap` below it,
        plus its own shift."""
        base = self.shadow_accuracy - (0.0 if trained else self.gap)
        return float(np.clip(base + rng.normal(0.0, self.shift_sd), 0.0, 1.0))

    def suspect_confidence(self, rng: np.random.Generator, trained: bool) -> float:
        base = self.confidence - (0.0 if trained else self.confidence_gap)
        return float(base + rng.normal(0.0, self.confidence_sd))

    def answers(
        self, rng: np.random.Generator, true_labels: np.ndarray, accuracy: float, confidence: float | None
    ) -> Answers:
        """A model's answers: each image right with probability `accuracy`, else a random other class;
        probability vectors when `confidence` is given."""
        n, c = len(true_labels), self.n_classes
        right = rng.random(n) < accuracy
        wrong = (true_labels + rng.integers(1, c, size=n)) % c
        labels = np.where(right, true_labels, wrong).astype(np.int64)
        if confidence is None:
            return Answers(labels)
        logits = rng.standard_normal((n, c), dtype=np.float32)
        logits[np.arange(n), labels] += confidence
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return Answers(labels, probs / probs.sum(axis=1, keepdims=True))

    def evidence(
        self, rng: np.random.Generator, trained: bool, probabilities: bool = False, name: str = "suspect"
    ) -> Evidence:
        """One suspect's evidence: a fresh validation set, the shadow's and the suspect's answers."""
        n = self.n_batches * self.batch_size
        true_labels = np.arange(n) % self.n_classes
        batches = [np.arange(i * self.batch_size, (i + 1) * self.batch_size) for i in range(self.n_batches)]
        shadow_confidence = self.confidence if probabilities else None
        shadow = self.answers(rng, true_labels, self.shadow_accuracy, shadow_confidence)
        suspect = self.answers(
            rng,
            true_labels,
            self.suspect_accuracy(rng, trained),
            self.suspect_confidence(rng, trained) if probabilities else None,
        )
        return Evidence(self.task, true_labels, batches, shadow, suspect, name)


def judge_in_rounds(test, evidence: Evidence, n_rounds: int, batch_size: int) -> tuple[Verdict, int]:
    """Judge `evidence` as a sequential audit in `n_rounds` rounds does (`AuditRun.judge_suspect`): on the
    answers of rounds 1..r, cut into batches of `batch_size`, until the test decides; the verdict and the
    number of rounds it took."""
    from .engine import validation_batches

    parts = rounds.slices_of(evidence.true_labels, evidence.suspect_name, n_rounds)
    for r in range(1, n_rounds + 1):
        look = rounds.Look(r, n_rounds)
        index = np.concatenate(parts[:r])
        at = Evidence(
            evidence.task,
            evidence.true_labels[index],
            validation_batches(len(index), batch_size, seed=0),
            rounds.subset(evidence.shadow, index),
            rounds.subset(evidence.suspect, index),
            evidence.suspect_name,
            look=look,
        )
        verdict = test.decide(at)
        if verdict.decision != "inconclusive" or look.final:
            return verdict, r
    raise AssertionError("unreachable")


def error_rates(
    test,
    world: SimulatedAudit,
    trials: int,
    seed: int,
    probabilities: bool = False,
    n_rounds: int = 1,
) -> dict:
    """Run `test` on `trials` same-source and `trials` other-source simulated suspects (in `n_rounds`
    rounds, as a sequential audit, when more than 1).

    Returns counts: `false_clear` (same-source called not trained), `false_accuse` (other-source called
    trained), `abstain` (inconclusive, both kinds), `trials` per kind, and `rounds`, the rounds asked in
    all (n_rounds per suspect in the fixed design).
    """
    rng = np.random.default_rng(seed)
    counts = {"trials": trials, "false_clear": 0, "false_accuse": 0, "abstain": 0, "rounds": 0}
    for trained, wrong, key in (
        (True, "not-trained-on-generator", "false_clear"),
        (False, "trained-on-generator", "false_accuse"),
    ):
        for i in range(trials):
            # Every suspect has its own name: a rule may key on it (random guessing seeds its coin with it).
            name = f"{'same' if trained else 'other'}-source-{i}"
            evidence = world.evidence(rng, trained, probabilities, name)
            if n_rounds == 1:
                decision, asked = test.decide(evidence).decision, 1
            else:
                verdict, asked = judge_in_rounds(test, evidence, n_rounds, world.batch_size)
                decision = verdict.decision
            counts["rounds"] += asked
            counts[key] += decision == wrong
            counts["abstain"] += decision == "inconclusive"
    return counts
