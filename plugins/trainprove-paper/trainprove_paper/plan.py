"""Sample-size planning: how many validation images (= suspect queries) an audit needs.

TrainProVe calls a suspect "not trained" when its mean accuracy ā falls below mu - G_crit(n) * s, where mu
and s are the mean and standard deviation of the shadow's n batch accuracies. With m images per batch
and N = n m images in all:

- s estimates sigma_1 / sqrt(m), sigma_1 being the spread of one image's correctness (sqrt(p (1 - p)) for
  a pure binomial, more when classes differ in difficulty); it is read off the shadow model the audit
  already trained: sigma_1 = s_observed * sqrt(m_observed).
- mu - ā is normal with mean Delta (the accuracy drop to detect) and variance
  tau^2 = (p_s (1 - p_s) + sigma_1^2) / N (the suspect's and the shadow's own sampling noise).
- s is sigma_1 / sqrt(m) times sqrt(chi2_{n-1} / (n - 1)), independent of mu (normal theory).

So (mu - ā) / s > G_crit is a noncentral t event: power = P(T'(n - 1, Delta / tau) > G_crit sigma_1 /
(sqrt(m) tau)), exact under the normal model. The batch size acts as a margin (a bigger batch shrinks s,
and with it the drop the test can see), and the critical value grows with n, so for a given drop the
fewest queries usually come from few large batches, down to the smallest n at which Grubbs keeps alpha
(`grubbs.fewest_values`).

For Welch (null "trained", margin delta) the power depends on N only (and on n through the degrees of
freedom): P(T'(2n - 2, -(Delta - delta) / se) < t_alpha), se = sqrt((p_s (1 - p_s) + sigma_1^2) / N).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from .grubbs import fewest_values, grubbs_critical

MAX_BATCH = 1_000_000


@dataclass(frozen=True)
class ShadowSpread:
    """The shadow model's accuracy on the validation set and the spread of one image's correctness."""

    accuracy: float
    sigma_1: float
    batches: int
    batch_size: float

    @classmethod
    def from_batches(cls, accuracies: np.ndarray, batch_sizes: np.ndarray) -> ShadowSpread:
        """Read off observed batch accuracies; the per-image spread is never taken below the binomial
        value of a Laplace-smoothed accuracy (a perfect shadow still has some)."""
        m = float(np.mean(batch_sizes))
        errors = float(np.sum((1 - accuracies) * batch_sizes))
        p = 1 - (errors + 1) / (float(np.sum(batch_sizes)) + 2)
        observed = float(np.std(accuracies, ddof=1)) * math.sqrt(m)
        return cls(float(np.mean(accuracies)), max(observed, math.sqrt(p * (1 - p))), len(accuracies), m)


@dataclass(frozen=True)
class Design:
    """One way to run the test: n batches of m images; N = n m validation images and suspect queries."""

    test: str
    batches: int
    batch_size: int
    queries: int
    power: float


def _suspect_variance(spread: ShadowSpread, drop: float) -> float:
    p = min(max(spread.accuracy - drop, 0.0), 1.0)
    return p * (1 - p) + spread.sigma_1**2


def grubbs_power(
    spread: ShadowSpread, drop: float, n: int, m: int, alpha: float, paper_compat: bool = False
) -> float:
    """The probability that TrainProVe calls "not trained" a suspect `drop` less accurate than the shadow,
    with n batches of m images."""
    tau = math.sqrt(_suspect_variance(spread, drop) / (n * m))
    g = grubbs_critical(n, alpha, paper_compat)
    return float(stats.nct.sf(g * spread.sigma_1 / (math.sqrt(m) * tau), n - 1, drop / tau))


def welch_power(spread: ShadowSpread, drop: float, n: int, m: int, alpha: float, margin: float) -> float:
    """The probability that the Welch baseline (null "trained") calls "not trained" a suspect `drop` less
    accurate than the shadow, with n batches of m images."""
    se = math.sqrt(_suspect_variance(spread, drop) / (n * m))
    df = 2 * n - 2
    return float(stats.nct.cdf(stats.t.ppf(alpha, df), df, -(drop - margin) / se))


def smallest_batch(power_of, target: float) -> int | None:
    """The smallest batch size m whose `power_of(m)` reaches `target` (power grows with m), or None."""
    if power_of(MAX_BATCH) < target:
        return None
    lo, hi = 1, MAX_BATCH
    while lo < hi:
        mid = (lo + hi) // 2
        if power_of(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def plan(
    spread: ShadowSpread,
    drop: float,
    power: float,
    alpha: float,
    *,
    current_batches: int,
    paper_compat: bool = False,
    margin: float = 0.02,
    max_batches: int = 200,
) -> dict:
    """Designs that detect `drop` with `power` at `alpha`: TrainProVe's cheapest, TrainProVe at the
    audit's number of batches, Welch's cheapest; and the audit's own design's power and smallest
    detectable drop."""
    if not 0 < drop < 1 or not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError("drop, power and alpha must all be between 0 and 1")
    fewest = fewest_values(alpha, paper_compat)
    designs: list[Design] = []

    def grubbs_design(n: int) -> Design | None:
        m = smallest_batch(lambda m: grubbs_power(spread, drop, n, m, alpha, paper_compat), power)
        return (
            None
            if m is None
            else Design("trainprove", n, m, n * m, grubbs_power(spread, drop, n, m, alpha, paper_compat))
        )

    # Every n up to 20, then a coarser grid: power changes slowly with n there.
    grid = sorted({*range(fewest, 21), 25, 30, 40, 50, 60, 80, 100, 150, 200} - set(range(fewest)))
    candidates = [d for n in grid if n <= max_batches and (d := grubbs_design(n)) is not None]
    if candidates:
        designs.append(min(candidates, key=lambda d: d.queries))
    at_current = grubbs_design(max(current_batches, fewest))
    if at_current is not None and at_current not in designs:
        designs.append(at_current)
    if drop > margin:
        welch = []
        for n in (5, 10, 20, 40):
            m = smallest_batch(lambda m, n=n: welch_power(spread, drop, n, m, alpha, margin), power)
            if m is not None:
                welch.append(
                    Design(
                        f"welch (margin {margin})",
                        n,
                        m,
                        n * m,
                        welch_power(spread, drop, n, m, alpha, margin),
                    )
                )
        if welch:
            designs.append(min(welch, key=lambda d: d.queries))
    m_now = max(1, round(spread.batch_size))
    current = {
        "batches": spread.batches,
        "batch_size": m_now,
        "queries": spread.batches * m_now,
        # Below `fewest` batches the test abstains, so it detects nothing.
        "power": grubbs_power(spread, drop, spread.batches, m_now, alpha, paper_compat)
        if spread.batches >= fewest
        else 0.0,
        "detectable_drop": detectable_drop(spread, power, alpha, spread.batches, m_now, paper_compat),
    }
    return {
        "shadow": asdict(spread),
        "drop": drop,
        "power": power,
        "alpha": alpha,
        "fewest_batches": fewest,
        "designs": [asdict(d) for d in designs],
        "current": current,
    }


def detectable_drop(
    spread: ShadowSpread, power: float, alpha: float, n: int, m: int, paper_compat: bool = False
) -> float | None:
    """The smallest accuracy drop that n batches of m images detect with `power` (None if even a drop to
    zero accuracy is not detected, or n is below the size at which Grubbs keeps alpha)."""
    if n < fewest_values(alpha, paper_compat):
        return None
    top = spread.accuracy
    if grubbs_power(spread, top, n, m, alpha, paper_compat) < power:
        return None
    lo, hi = 0.0, top
    for _ in range(50):
        mid = (lo + hi) / 2
        if grubbs_power(spread, mid, n, m, alpha, paper_compat) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def audit_spread(config, plugins, store, show_progress: bool = True) -> tuple[ShadowSpread, list[str]]:
    """The shadow's spread for an audit file's configuration, and the audit's workload (every image set,
    model and query it makes, `AuditRun.workload`): makes (or finds in the cache) the shadow set, the
    validation set and the shadow model, and asks the shadow only; no suspect is queried."""
    from trainprove_core import AuditRun, answered_batch_sizes, batch_accuracies

    with AuditRun(config, plugins, store, show_progress) as run:
        workload = run.workload()
        # Evidence of the shadow against itself: only its batch accuracies are read.
        evidence = run.evidence("shadow", run.shadow_answers)
        spread = ShadowSpread.from_batches(
            batch_accuracies(evidence, run.shadow_answers), answered_batch_sizes(evidence, run.shadow_answers)
        )
        return spread, workload


def format_plan(result: dict) -> str:
    """The plan as a few lines a defender can read."""
    sh, cur = result["shadow"], result["current"]
    chance = result.get("chance")
    warning = []
    if chance is not None and sh["accuracy"] < chance + 0.1:
        warning = [
            f"WARNING: the shadow model scores {sh['accuracy']:.3f}, near chance ({chance:.3f}): it has not "
            "learned the task from the shadow set, so no design below can tell a suspect anything, and "
            "every TrainProVe verdict will be inconclusive. Train it longer or with a recipe that suits "
            "the image size ([shadow] epochs, lr, batch_size, arch: `trainprove plugins timm` lists them), "
            "or give it more images.",
        ]
    lines = warning + [
        f"Shadow model on the validation set: accuracy {sh['accuracy']:.3f}, {sh['batches']} batches of "
        f"{sh['batch_size']:.0f}; one image's correctness spreads by {sh['sigma_1']:.3f}.",
        f"To call a suspect {result['drop']:.3f} less accurate than the shadow 'not trained' with power "
        f"{result['power']:.2f} at alpha {result['alpha']} (Grubbs needs at least {result['fewest_batches']} "
        "batches at this alpha):",
        f"  {'test':<22} {'batches':>8} {'batch size':>11} {'queries':>9} {'power':>6}",
    ]
    for d in result["designs"]:
        lines.append(
            f"  {d['test']:<22} {d['batches']:>8} {d['batch_size']:>11} {d['queries']:>9} {d['power']:>6.2f}"
        )
    if not result["designs"]:
        lines.append("  no design up to 200 batches reaches that power; ask for a larger drop or less power")
    drop = cur["detectable_drop"]
    lines.append(
        f"This audit as written ({cur['batches']} batches of {cur['batch_size']}, {cur['queries']} queries "
        f"per suspect) detects that drop with power {cur['power']:.2f}; the smallest drop it detects with "
        f"power {result['power']:.2f} is "
        + (f"{drop:.3f}." if drop is not None else "none (too few batches or images).")
    )
    lines.append(
        "Queries per suspect = validation images; set them with [validation] per_class and batch_size."
    )
    if result.get("workload"):
        lines.append("The whole audit as written (every decision test's own work included):")
        lines += [f"  {line}" for line in result["workload"]]
    return "\n".join(lines)
