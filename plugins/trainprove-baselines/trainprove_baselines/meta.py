"""Meta-classifier auditing, in the manner of Synthetic Artifact Auditing (USENIX Security 2025).

Where it comes from: that work audits whether a model was trained on data from a given LLM by training
shadow models on that LLM's data and on other data, describing each by its answers to fixed queries, and
learning a classifier over those descriptions. Here, for images:

1. Shadow models on the defender's generator: `shadows_per_source` fresh shadow sets (the audit's shadow
   prompt and size, new seeds), each trained by the audit's shadow trainer. Shadow models on other sources:
   the same for every source in `sources` (a generator name, or a label whose `source_settings` table
   gives the plugin as `use` and its settings; a real-data source such as `digits-real` counts as a
   generator).
2. Each model, and the suspect, is described by its answers on the audit's validation set: accuracy,
   accuracy per class, how often it names each class, how often it agrees with the audit's shadow model,
   and, when every model gives probabilities, its mean confidence, entropy and true-class probability.
3. A logistic regression (standardised features, balanced class weights) learns trained-vs-not from the
   shadow models and gives the suspect a probability of having been trained on the generator's images.

What it assumes: that the suspect's training source looks like one of the sources it was shown, and that
the audit's trainer stands in for the suspect's architecture and recipe. It claims no error rate. It is
inconclusive when its own shadow models cannot be told apart (leave-one-out accuracy below
`min_loo_accuracy`): then the features carry no signal and a probability would be noise.

Everything it builds goes through `Evidence.run.workspace` (the core's `Workspace`), so image sets, models and
answers are cached and shared across suspects and audits; the classifier is fitted once per audit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainprove_core import (
    Answers,
    AuditConfig,
    ConfigError,
    Evidence,
    Preconditions,
    ReferenceModel,
    Verdict,
    abstain,
    answered,
    check_fraction,
    content_key,
    prediction_entropy,
)

NAME = "meta-classifier"
QUANTITY = "meta-classifier probability of training on the generator"


def answer_features(
    answers: Answers, true_labels: np.ndarray, reference: Answers, n_classes: int, with_probabilities: bool
) -> np.ndarray:
    """The description of a model by its answers on the validation set (answered images only)."""
    mask = answered(answers)
    labels, truth = answers.labels[mask], true_labels[mask]
    correct = labels == truth
    per_class = [correct[truth == c].mean() if (truth == c).any() else 0.0 for c in range(n_classes)]
    named = np.bincount(labels, minlength=n_classes) / max(1, len(labels))
    agreement = float(np.mean(labels == reference.labels[mask]))
    features = [correct.mean(), *per_class, *named, agreement]
    if with_probabilities:
        p = answers.probabilities[mask]
        features += [
            p.max(axis=1).mean(),
            prediction_entropy(p).mean(),
            p[np.arange(len(truth)), truth].mean(),
        ]
    return np.asarray(features, dtype=float)


@dataclass
class FittedMetaClassifier:
    """The classifier of one audit, with what a verdict reports about it."""

    model: Any
    with_probabilities: bool
    n_trained: int
    n_other: int
    loo_accuracy: float


class MetaClassifierTest:
    """Shadow models on the generator's and other sources' images, a classifier over their answers."""

    needs = "labels"

    def __init__(
        self,
        sources: Sequence[str],
        source_settings: Mapping[str, Mapping[str, Any]] | None = None,
        shadows_per_source: int = 3,
        min_loo_accuracy: float = 0.75,
        min_answered: float = 0.95,
    ) -> None:
        if not sources:
            raise ConfigError(f"{NAME}: `sources` must name at least one other generator", key="test")
        unknown = sorted(set(source_settings or {}) - set(sources))
        if unknown:
            raise ConfigError(
                f"{NAME}: `source_settings` names {unknown}, which are not in `sources`", key="test"
            )
        if shadows_per_source < 2:
            raise ConfigError(
                f"{NAME}: `shadows_per_source` must be at least 2, got {shadows_per_source}", key="test"
            )
        check_fraction("min_loo_accuracy", min_loo_accuracy, NAME)
        self.sources = list(sources)
        self.source_settings = {k: dict(v) for k, v in (source_settings or {}).items()}
        self.shadows_per_source = shadows_per_source
        self.min_loo_accuracy = min_loo_accuracy
        self.preconditions = Preconditions(min_answered=min_answered, min_shadow_margin=None)
        self._fitted: dict[str, FittedMetaClassifier] = {}

    def decide(self, evidence: Evidence) -> Verdict:
        if evidence.run is None:
            return abstain(
                evidence,
                NAME,
                "it trains its own shadow models and needs the audit being run (Evidence.run), which this "
                "caller did not provide",
                quantity=QUANTITY,
            )
        config = evidence.run.config
        reason = self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, NAME, reason, quantity=QUANTITY)
        with_probabilities = (
            evidence.suspect.probabilities is not None and evidence.shadow.probabilities is not None
        )
        fitted = self._fit(evidence, config, with_probabilities)
        names = (
            f"{fitted.n_trained} shadow models on {config.generator.use} and {fitted.n_other} on "
            f"{', '.join(self.sources)}"
        )
        if fitted.loo_accuracy < self.min_loo_accuracy:
            return abstain(
                evidence,
                NAME,
                f"the meta-classifier tells its own {names} apart with leave-one-out accuracy only "
                f"{fitted.loo_accuracy:.2f} (< {self.min_loo_accuracy}); its features carry no usable signal",
                quantity=QUANTITY,
            )
        x = answer_features(
            evidence.suspect,
            evidence.true_labels,
            evidence.shadow,
            evidence.task.num_classes,
            fitted.with_probabilities,
        )
        p = float(fitted.model.predict_proba(x[None])[0, 1])
        decision = "trained-on-generator" if p >= 0.5 else "not-trained-on-generator"
        return Verdict(
            suspect=evidence.suspect_name,
            test=NAME,
            decision=decision,
            explanation=f"{evidence.suspect_name}: {decision.replace('-', ' ')}; a classifier trained on the "
            f"answers of {names} gives it probability {p:.2f} of training on the generator "
            f"(leave-one-out accuracy on its own shadows {fitted.loo_accuracy:.2f}).",
            statistic=p,
            threshold=0.5,
            n=fitted.n_trained + fitted.n_other,
            suspect_value=p,
            boundary=0.5,
            quantity=QUANTITY,
            details={
                "score": p,
                "loo_accuracy": fitted.loo_accuracy,
                "sources": self.sources,
                "with_probabilities": fitted.with_probabilities,
            },
        )

    # ---- the shadow models and the classifier ---------------------------------------------------------

    def _fit(self, evidence: Evidence, config: AuditConfig, with_probabilities: bool) -> FittedMetaClassifier:
        ws = evidence.run.workspace
        key = content_key(
            {
                "audit": config.public_document(),
                "sources": self.sources,
                "settings": self.source_settings,
                "k": self.shadows_per_source,
                "probabilities": with_probabilities,
            }
        )
        if key in self._fitted:
            return self._fitted[key]
        validation = ws.image_set("validation", ws.generator(config.generator), config.validation)
        if not np.array_equal(validation.labels, evidence.true_labels):
            raise ValueError(
                f"{NAME}: the workspace's validation set is not the one the evidence was built on"
            )
        defender = ws.generator(config.generator)
        clash = f"{NAME}: source {{label}} is the audit's own generator; `sources` must differ from it"
        sources = ws.reference_generators(NAME, self.sources, self.source_settings, defender, clash)
        shadows, trained = [], []
        for index, (label, generator) in enumerate([(config.generator.use, defender), *sources]):
            for i in range(self.shadows_per_source):
                # Seeds depend on the source itself and the audit's shadow seed, not on which generator is
                # the defender, so audits of the same task with other defenders reuse these models.
                seed = (config.shadow.seed, NAME, dict(generator.identity), i)
                images = ws.seeded_set(
                    f"{NAME} {label} {i}", generator, config.shadow.prompt, config.shadow.per_class, seed
                )
                shadows.append(
                    ReferenceModel(f"{NAME} shadow {label} {i}", config.trainer, images, {"": validation})
                )
                trained.append(index == 0)
        # Every shadow trained in one call (at once on a parallel executor), then all asked at once.
        answer_sheets = [made.answers[""] for made in ws.reference_models(shadows)]
        with_probabilities = with_probabilities and all(a.probabilities is not None for a in answer_sheets)
        x = np.stack(
            [
                answer_features(
                    a, evidence.true_labels, evidence.shadow, evidence.task.num_classes, with_probabilities
                )
                for a in answer_sheets
            ]
        )
        y = np.array(trained, dtype=int)
        fitted = FittedMetaClassifier(
            _classifier().fit(x, y),
            with_probabilities,
            int(y.sum()),
            int(len(y) - y.sum()),
            _leave_one_out_accuracy(x, y),
        )
        self._fitted[key] = fitted
        return fitted


def _classifier() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000))


def _leave_one_out_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    hits = [
        _classifier().fit(np.delete(x, i, axis=0), np.delete(y, i)).predict(x[i : i + 1])[0] == y[i]
        for i in range(len(y))
    ]
    return float(np.mean(hits))
