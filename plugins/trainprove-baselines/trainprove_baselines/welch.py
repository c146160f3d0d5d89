"""A one-sided Welch t-test of the suspect's batch accuracies against the shadow's, with an explicit margin.

Where it comes from: the plain two-sample test one reaches for before Grubbs (listed among TrainProVe's
naive baselines). The paper's reproduction notes found that without a margin it misses more true matches
as the validation set grows: with enough batches any real difference, however small, is significant, and
two models trained on the same images never score exactly alike. The margin says how much lower a suspect
may score and still count as trained on the generator.

Which error alpha bounds is a setting (`null`):

- `null = "trained"` (the default, TrainProVe's direction): H0 says the suspect's mean batch accuracy is
  at least the shadow's minus `margin`; rejecting it says "not trained". Alpha bounds the rate of clearing
  a suspect whose accuracy is within the margin of the shadow's.
- `null = "not-trained"` (a non-inferiority test): H0 says the suspect's mean accuracy is at most the
  shadow's minus `margin`; rejecting it says "trained". Alpha bounds the rate of *accusing* a suspect whose
  accuracy is `margin` or more below the shadow's: the error that matters when a verdict is evidence
  against someone.

What it assumes: batch accuracies are independent and roughly normal within each model (the binomial
floor keeps a perfect model's zero spread from making any difference significant); the suspect and the
shadow answer the same batches, and the test ignores that pairing, which makes it conservative when the
batches differ in difficulty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainprove_core import (
    ConfigError,
    Evidence,
    Preconditions,
    Verdict,
    abstain,
    answered_batch_sizes,
    batch_accuracies,
    binomial_sd_floor,
    check_alpha,
    check_fraction,
)

NAME = "welch"
QUANTITY = "batch accuracy on the validation set"
NULLS = ("trained", "not-trained")


@dataclass(frozen=True)
class WelchResult:
    statistic: float
    df: float
    se: float
    p_value: float
    critical: float
    boundary: float


def welch_one_sided(
    suspect: np.ndarray,
    shadow: np.ndarray,
    *,
    margin: float,
    alpha: float,
    null: str,
    suspect_floor: float = 0.0,
    shadow_floor: float = 0.0,
) -> WelchResult:
    """The Welch statistic t = (mean_suspect - mean_shadow + margin) / se with Welch-Satterthwaite degrees
    of freedom; each sample's variance is floored at its floor squared. The p-value is the lower tail for
    `null = "trained"` and the upper tail for `null = "not-trained"`; `boundary` is the suspect mean at
    which the decision flips."""
    from scipy import stats  # here: its import costs a second of a cached audit's start

    x, y = np.asarray(suspect, dtype=float), np.asarray(shadow, dtype=float)
    vx = max(float(x.var(ddof=1)), suspect_floor**2) / len(x)
    vy = max(float(y.var(ddof=1)), shadow_floor**2) / len(y)
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    statistic = (float(x.mean()) - float(y.mean()) + margin) / se
    if null == "trained":
        p_value, critical = float(stats.t.cdf(statistic, df)), float(stats.t.ppf(alpha, df))
    else:
        p_value, critical = float(stats.t.sf(statistic, df)), float(stats.t.isf(alpha, df))
    return WelchResult(statistic, df, se, p_value, critical, float(y.mean()) - margin + critical * se)


class WelchTest:
    """One-sided Welch t-test with a margin; see the module docstring for what alpha bounds."""

    needs = "labels"

    def __init__(
        self,
        alpha: float = 0.05,
        margin: float = 0.02,
        null: str = "trained",
        sd_floor: bool = True,
        preconditions: Preconditions | None = None,
    ) -> None:
        check_alpha(alpha, NAME)
        check_fraction("margin", margin, NAME)
        if null not in NULLS:
            raise ConfigError(f"{NAME}: `null` must be one of {list(NULLS)}, got {null!r}", key="test")
        self.alpha, self.margin, self.null, self.sd_floor = alpha, margin, null, sd_floor
        self.preconditions = preconditions or Preconditions(min_batches=5)
        self.preconditions.validate(NAME)

    def decide(self, evidence: Evidence) -> Verdict:
        reason = self.preconditions.violated(evidence)
        if reason:
            return abstain(evidence, NAME, reason, alpha=self.alpha, quantity=QUANTITY)
        x = batch_accuracies(evidence, evidence.suspect)
        y = batch_accuracies(evidence, evidence.shadow)
        floors = (
            (
                binomial_sd_floor(x, answered_batch_sizes(evidence, evidence.suspect)),
                binomial_sd_floor(y, answered_batch_sizes(evidence, evidence.shadow)),
            )
            if self.sd_floor
            else (0.0, 0.0)
        )
        r = welch_one_sided(
            x,
            y,
            margin=self.margin,
            alpha=self.alpha,
            null=self.null,
            suspect_floor=floors[0],
            shadow_floor=floors[1],
        )
        rejected = r.p_value < self.alpha
        if self.null == "trained":
            decision = "not-trained-on-generator" if rejected else "trained-on-generator"
        else:
            decision = "trained-on-generator" if rejected else "not-trained-on-generator"
        gap = float(y.mean() - x.mean())
        h0 = (
            f"at least the shadow's minus {self.margin:.3f}"
            if self.null == "trained"
            else f"at most the shadow's minus {self.margin:.3f}"
        )
        explanation = (
            f"{evidence.suspect_name}: {decision.replace('-', ' ')}; its mean batch accuracy "
            f"({x.mean():.3f}) is {gap:.3f} below the shadow model's ({y.mean():.3f}); the hypothesis "
            f"that it is {h0} "
            f"is {'rejected' if rejected else 'kept'} (Welch t = {r.statistic:.2f}, p = {r.p_value:.3g}, "
            f"alpha = {self.alpha})."
        )
        return Verdict(
            suspect=evidence.suspect_name,
            test=NAME,
            decision=decision,
            explanation=explanation,
            statistic=r.statistic,
            threshold=r.critical,
            p_value=r.p_value,
            alpha=self.alpha,
            n=len(x),
            effect_size=gap,
            sample=[float(a) for a in y],
            suspect_value=float(x.mean()),
            boundary=r.boundary,
            quantity=QUANTITY,
            details={
                "score": r.statistic,
                "df": r.df,
                "se": r.se,
                "margin": self.margin,
                "null": self.null,
                "sd_floor": list(floors),
            },
        )
