"""The naive baseline: call a suspect trained on the generator when its accuracy on the generator's fresh
validation images reaches a fixed value.

Where it comes from: the obvious first idea, listed among TrainProVe's naive baselines. What it assumes:
that one number separates models trained on this generator's images from all others, for this task and
generator, whatever the suspect's architecture or recipe. It claims no error rate; the benchmark measures
both. With `relative`, the threshold is a fraction of the shadow model's accuracy, which at least follows
how hard the validation set is.
"""

from __future__ import annotations

import numpy as np

from trainprove_core import ConfigError, Evidence, Preconditions, Verdict, abstain, answered, check_fraction

NAME = "accuracy-threshold"
QUANTITY = "accuracy on the validation set"


class AccuracyThresholdTest:
    """Trained on the generator iff accuracy >= threshold (times the shadow's accuracy, if relative)."""

    needs = "labels"

    def __init__(self, threshold: float = 0.9, relative: bool = False, min_answered: float = 0.95) -> None:
        if not 0.0 <= threshold <= (2.0 if relative else 1.0):
            raise ConfigError(f"{NAME}: `threshold` {threshold} is out of range", key="test")
        check_fraction("min_answered", min_answered, NAME)
        self.threshold = threshold
        self.relative = relative
        # Only a partial answer sheet undermines this rule; it makes no use of batches, and its shadow
        # (relative mode) is a scale, not a reference population.
        self.preconditions = Preconditions(min_answered=min_answered, min_shadow_margin=None)

    def decide(self, evidence: Evidence) -> Verdict:
        reason = self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, NAME, reason, quantity=QUANTITY)
        mask = answered(evidence.suspect)
        accuracy = float(np.mean(evidence.suspect.labels[mask] == evidence.true_labels[mask]))
        shadow_mask = answered(evidence.shadow)
        shadow = float(np.mean(evidence.shadow.labels[shadow_mask] == evidence.true_labels[shadow_mask]))
        boundary = self.threshold * shadow if self.relative else self.threshold
        trained = accuracy >= boundary
        decision = "trained-on-generator" if trained else "not-trained-on-generator"
        scale = f" ({self.threshold:.2f} x the shadow's {shadow:.3f})" if self.relative else ""
        relation = "reaches" if trained else "is below"
        return Verdict(
            suspect=evidence.suspect_name,
            test=NAME,
            decision=decision,
            explanation=f"{evidence.suspect_name}: {decision.replace('-', ' ')}; its {QUANTITY} "
            f"({accuracy:.3f}) {relation} the fixed threshold {boundary:.3f}{scale}.",
            statistic=accuracy,
            threshold=boundary,
            n=int(mask.sum()),
            effect_size=shadow - accuracy,
            suspect_value=accuracy,
            boundary=boundary,
            quantity=QUANTITY,
            details={"score": accuracy - boundary, "shadow_accuracy": shadow, "relative": self.relative},
        )
