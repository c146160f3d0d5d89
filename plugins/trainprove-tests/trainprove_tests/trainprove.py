"""TrainProVe: is the suspect's accuracy on the defender's fresh images an outlier below the shadow's?

H0: the suspect's mean batch accuracy on the validation set comes from the same population as the shadow
model's per-batch accuracies, i.e. it was trained on the generator's images. H1: it is abnormally low, i.e.
it was not. A one-sided Grubbs test on the low side at level alpha decides (see `grubbs.py`).
"""

from __future__ import annotations

import numpy as np

from trainprove_core.records import Evidence, Verdict

from .grubbs import binomial_sd_floor, grubbs_one_sided

class TrainProVeTest:
    """The Grubbs test of TrainProVe on label accuracy."""

    needs = "labels"

    def __init__(self, alpha: float = 0.05, paper_compat: bool = False, sd_floor: bool = True) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha = alpha
        self.paper_compat = paper_compat
        self.use_floor = sd_floor and not paper_compat

    def decide(self, evidence: Evidence) -> Verdict:
        shadow_acc = evidence.batch_accuracies(evidence.shadow)
        suspect_acc = evidence.batch_accuracies(evidence.suspect)
        suspect_mean = float(suspect_acc.mean())
        sizes = np.array([len(b) for b in evidence.batches], dtype=float)
        floor = binomial_sd_floor(shadow_acc, sizes) if self.use_floor else 0.0
        r = grubbs_one_sided(
            shadow_acc, suspect_mean, alpha=self.alpha, side="low", sd_floor=floor,
            paper_compat=self.paper_compat,
        )
        if r.outlier:
            decision = "not-trained-on-generator"
            why = (
                f"its accuracy on the generator's validation images ({suspect_mean:.3f}) is abnormally low "
                f"next to the shadow model's ({r.mean:.3f} ± {r.sd:.3f} over {len(shadow_acc)} batches): "
                f"G = {r.statistic:.2f} > {r.critical:.2f}"
            )
        else:
            decision = "trained-on-generator"
            why = (
                f"its accuracy on the generator's validation images ({suspect_mean:.3f}) is in line with "
                f"the shadow model's ({r.mean:.3f} ± {r.sd:.3f} over {len(shadow_acc)} batches): "
                f"G = {r.statistic:.2f} ≤ {r.critical:.2f}"
            )
        return Verdict(
            suspect=evidence.suspect_name,
            test="trainprove",
            decision=decision,
            explanation=f"{evidence.suspect_name}: {decision.replace('-', ' ')}; {why}.",
            statistic=r.statistic,
            threshold=r.critical,
            p_value=r.p_value,
            alpha=self.alpha,
            n=len(shadow_acc),
            effect_size=r.mean - suspect_mean,
            sample=[float(a) for a in shadow_acc],
            suspect_value=suspect_mean,
            boundary=r.boundary,
            quantity="batch accuracy on the validation set",
            details={"sd": r.sd, "sd_raw": r.sd_raw, "sd_floor": floor, "paper_compat": self.paper_compat},
        )
