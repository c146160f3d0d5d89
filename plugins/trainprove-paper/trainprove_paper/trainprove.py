"""TrainProVe: is the suspect's accuracy on the defender's fresh images an outlier below the shadow's?

H0: the suspect's mean batch accuracy on the validation set comes from the same population as the shadow
model's per-batch accuracies, i.e. it was trained on the generator's images. H1: it is abnormally low, i.e.
it was not. A one-sided Grubbs test on the low side at level alpha decides (see `grubbs.py`). Alpha bounds
the rate of *clearing* a suspect that did train on the generator (under the normal model); nothing bounds
the rate of accusing one that did not, which is why the benchmark measures it.

`grubbs_verdict` is the part the three TrainProVe tests share: a reference sample, the suspect's value in
the same units, the side that means "not trained", and the verdict with a sentence a person can read.
"""

from __future__ import annotations

import numpy as np

from trainprove_core import (
    Evidence,
    Preconditions,
    Verdict,
    abstain,
    answered_batch_sizes,
    batch_accuracies,
    binomial_sd_floor,
    check_alpha,
)

from .grubbs import fewest_values, grubbs_one_sided, outside_value_rate

ACCURACY = "batch accuracy on the validation set"


def grubbs_verdict(
    evidence: Evidence,
    test: str,
    sample: np.ndarray,
    value: float,
    *,
    side: str,
    alpha: float,
    paper_compat: bool,
    quantity: str,
    unit: str,
    sd_floor: float = 0.0,
    details: dict | None = None,
) -> Verdict:
    """The verdict of a one-sided Grubbs test of `value` against `sample`, or an inconclusive one when
    the sample is too small for the test to keep its alpha (see `grubbs.outside_value_rate`).

    `side` is the side on which an outlier means "not trained on the generator" ("low" for accuracy and
    similarity, "high" for entropy); `unit` names the sample's members in the explanation ("batches",
    "classes").
    """
    fewest = fewest_values(alpha, paper_compat)
    if len(sample) < fewest:
        rate = outside_value_rate(len(sample), alpha, paper_compat) if len(sample) >= 3 else 1.0
        return abstain(
            evidence,
            test,
            f"the shadow model gives only {len(sample)} {unit} to compare with, and with so few the Grubbs "
            f"critical value would clear a suspect from the shadow's own population with probability "
            f"{rate:.2f}, more than alpha = {alpha}; this test needs at least {fewest} {unit} at that alpha",
            alpha=alpha,
            quantity=quantity,
        )
    r = grubbs_one_sided(sample, value, alpha=alpha, side=side, sd_floor=sd_floor, paper_compat=paper_compat)
    context = f"the shadow model's {r.mean:.3f} ± {r.sd:.3f} over {len(sample)} {unit}"
    outlier = "abnormally" if r.outlier else "not abnormally"
    relation = ">" if r.outlier else "≤"
    decision = "not-trained-on-generator" if r.outlier else "trained-on-generator"
    why = (
        f"its {quantity} is {value:.3f}, {outlier} {side} next to {context}: "
        f"G = {r.statistic:.2f} {relation} {r.critical:.2f}"
    )
    return Verdict(
        suspect=evidence.suspect_name,
        test=test,
        decision=decision,
        explanation=f"{evidence.suspect_name}: {decision.replace('-', ' ')}; {why}.",
        statistic=r.statistic,
        threshold=r.critical,
        p_value=r.p_value,
        alpha=alpha,
        n=len(sample),
        effect_size=(r.mean - value) if side == "low" else (value - r.mean),
        sample=[float(a) for a in sample],
        suspect_value=value,
        boundary=r.boundary,
        quantity=quantity,
        details={
            "sd": r.sd,
            "sd_raw": r.sd_raw,
            "sd_floor": sd_floor,
            "paper_compat": paper_compat,
            "side": side,
            "score": -r.statistic,
            **(details or {}),
        },
    )


class TrainProVeTest:
    """The Grubbs test of TrainProVe on label accuracy.

    Sequential (`[validation] rounds` > 1): at each look the test spends `look.spend(alpha)` of its alpha
    (`trainprove_core.rounds`) on the batches answered so far. Its alpha bounds the rate of *clearing* a
    suspect that trained on the generator, and "trained on the generator" is what it says when it finds
    no outlier, so only a clearing can end the audit early: before the last look, "no outlier yet" is
    reported as undecided and the next round is asked.
    """

    needs = "labels"
    sequential = True

    def __init__(
        self,
        alpha: float = 0.05,
        paper_compat: bool = False,
        sd_floor: bool = True,
        preconditions: Preconditions | None = None,
    ) -> None:
        check_alpha(alpha, "trainprove")
        self.alpha = alpha
        self.paper_compat = paper_compat
        self.use_floor = sd_floor and not paper_compat
        self.preconditions = preconditions or Preconditions()
        self.preconditions.validate("trainprove")

    def decide(self, evidence: Evidence) -> Verdict:
        reason = self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, "trainprove", reason, alpha=self.alpha, quantity=ACCURACY)
        shadow_acc = batch_accuracies(evidence, evidence.shadow)
        suspect_acc = batch_accuracies(evidence, evidence.suspect)
        floor = (
            binomial_sd_floor(shadow_acc, answered_batch_sizes(evidence, evidence.shadow))
            if self.use_floor
            else 0.0
        )
        look = evidence.look
        alpha = self.alpha if look is None else look.spend(self.alpha)
        verdict = grubbs_verdict(
            evidence,
            "trainprove",
            shadow_acc,
            float(suspect_acc.mean()),
            side="low",
            alpha=alpha,
            paper_compat=self.paper_compat,
            quantity=ACCURACY,
            unit="batches",
            sd_floor=floor,
        )
        if look is not None and not look.final and verdict.decision == "trained-on-generator":
            return abstain(
                evidence,
                "trainprove",
                f"at {look.describe()} its accuracy is not an outlier at alpha {alpha:.2g} (this look's "
                f"share of {self.alpha}); only a clearing can be decided before the last look",
                alpha=alpha,
                quantity=ACCURACY,
            )
        return verdict
