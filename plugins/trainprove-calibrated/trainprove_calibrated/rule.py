"""The calibrated rule: both error rates bounded by reference models, three-way verdicts.

TrainProVe compares the suspect with the batch noise of *one* shadow model, so its alpha bounds neither
error once suspects are trained unlike the shadow. This rule compares the suspect with *populations of
models*, trained by the defender on sources it controls:

- **innocent references**: models trained on each reference source (real data it holds, other
  generators), with several recipes (seeds, architectures, training lengths, augmentation, data sizes);
- **guilty references**: models trained on the defender's generator's images with the same recipes, some
  on a *share* of the generator's images mixed with reference images (a suspect trained on a mixture is
  trained on the generator too).

The statistic does not confuse a good model with a model trained on my images. Every model (and the
suspect) answers labels on the audit's validation set V_G (the generator's images) and on one validation
set V_R per reference source. Its **relative error** is

    s = log( mean over references R of err(V_R) / err(V_G) )      (error rates smoothed: (e + 1/2)/(n + 1))

A strong innocent model is strong everywhere (s near 0); a model trained on the generator's images makes
far fewer errors on them than elsewhere (s > 0), however weak it is overall, and a model trained on a
mixture that includes them makes almost none on them. For an innocent reference trained on R itself, R is
left out of the mean, so it stands for an innocent suspect trained on a source the defender does *not*
have (the case that matters; a suspect trained on a reference source scores lower still, so it is accused
even less).

The relative error does not see a model trained on a *mixture* that includes the generator's images
(strong on them and on everything else, so its ratio is near 1), and the guilty references include such
mixtures: compared on it, nothing could be cleared. So clearing compares the **absolute error**
-log(err(V_G)) instead (`clear_by`; `accuse_by` picks the accusing side's statistic). Each bound holds on
its own, whatever statistic its side uses.

The two p-values are Student-t prediction tails (a new draw from a normal population of which the
references are a sample: see `Population`, which groups innocent references by source):

    p_innocent = P(an innocent model's relative error >= the suspect's)   accuse only if <= alpha
    p_guilty   = P(a guilty model's absolute error <= the suspect's)      clear only if <= beta

and the verdict is `trained-on-generator` when only the first is small, `not-trained-on-generator` when
only the second is, `inconclusive` otherwise (neither: the populations overlap at s, the generators are
too alike to tell; both: the suspect is unlike every reference). So the false-accusation rate is at most
alpha and the false-clearing rate at most beta *for suspects exchangeable with the references* (drawn
like them from the same population of sources and recipes, normal in s). That assumption is what the
benchmark (bench/decision_tests.py, docs/results.md) tests on suspects made by another training loop.
A suspect that has not learned the task (accuracy below `min_accuracy` on every set) is inconclusive,
never cleared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainprove_core import (
    Answers,
    AuditConfig,
    AuditContext,
    ConfigError,
    Evidence,
    ReferenceModel,
    Verdict,
    Workload,
    abstain,
    answered,
    content_key,
    progress,
    rounds,
)

NAME = "calibrated"
STATISTICS = ("relative", "absolute", "gap")
PURE_BY = "gap"  # the statistic of the guilty models trained on the generator's images alone
QUANTITIES = {
    "relative": "relative error: log(references' mean error rate / error rate on the generator's images)",
    "absolute": "absolute error: -log(error rate on the generator's images)",
    "gap": "gap: -log(error rate on the generator's images) - max over every image set of -log(error rate)",
}
QUANTITY = "relative and absolute error on the generator's images"


def recipe_defaults(trainer: str, settings: Mapping[str, Any], image_size: int) -> list[dict[str, Any]]:
    """The default recipes of the reference models: the shadow's recipe with other seeds, another
    architecture, half the epochs at a higher learning rate, stronger crops on fewer images. `share` and
    `per_class_factor` are the rule's own keys (the fraction of the generator's images in a guilty
    reference's training set; its size relative to the shadow set); every other key is the trainer's
    (`train_seed` is the timm trainer's seed, the name trainers use for it: `seed` in [shadow] is the
    shadow set's)."""
    seed = int(settings.get("train_seed", 0))
    if trainer != "timm":  # only seeds and data are varied for a trainer whose keys are unknown here
        return [
            {"train_seed": seed + 101},
            {"train_seed": seed + 102, "share": 0.5},
            {"train_seed": seed + 103, "per_class_factor": 0.5},
            {"train_seed": seed + 104, "share": 0.25},
        ]
    # timm: the shadow's recipe with other seeds, another architecture, half the epochs, stronger crops on
    # fewer images, a quarter share, and four under-trained guilty models.
    small = image_size < 32
    other_arch = "test_efficientnet" if small else "resnet34"
    epochs = int(settings.get("epochs", 12))
    lr = float(settings.get("lr", 1e-3))
    return [
        {"train_seed": seed + 101},
        {"train_seed": seed + 102, "arch": other_arch},
        {"train_seed": seed + 103, "epochs": max(2, epochs // 2), "lr": lr * 3, "share": 0.5},
        {"train_seed": seed + 104, "crop_scale": [0.5, 1.0], "per_class_factor": 0.5},
        {"train_seed": seed + 105, "arch": other_arch, "epochs": max(2, epochs // 2), "share": 0.25},
        # Under-trained: a guilty model need not be a strong one. They are left out of the strong guilty
        # sub-population (see `decide`); the last three train the guilty model only.
        {"train_seed": seed + 106, "epochs": max(1, epochs // 6), "weak": True},
        {"train_seed": seed + 107, "epochs": max(1, epochs // 6), "weak": True, "innocent": False},
        {"train_seed": seed + 108, "epochs": max(1, epochs // 4), "weak": True, "innocent": False},
        {
            "train_seed": seed + 109,
            "epochs": max(1, epochs // 4),
            "per_class_factor": 0.5,
            "weak": True,
            "innocent": False,
        },
    ]


def reach(p: float, k: int) -> float:
    """How far beyond a population's mean (in its predictive spreads) a suspect must lie for its tail to be
    at most p, with k exchangeable groups: t(1 - p, k - 1) * sqrt(1 + 1/k)."""
    from scipy import stats

    return float(stats.t.isf(p, k - 1)) * math.sqrt(1.0 + 1.0 / k) if k >= 2 else float("inf")


def t_tail(z: float, dof: int, upper: bool) -> float:
    from scipy import stats

    return float(stats.t.sf(z, dof) if upper else stats.t.cdf(z, dof))


@dataclass
class Population:
    """The relative accuracies of one population of reference models, grouped by the unit that is
    exchangeable with a suspect.

    For innocent references that unit is the *source*: a suspect's trainer used some source the defender
    may not have, so what varies from one innocent suspect to the next is mostly the source, and models of
    one source trained with several recipes are not independent draws. The prediction for a new model of a
    new source therefore has k - 1 degrees of freedom for k sources, and variance
    S_b^2 (1 + 1/k) + S_w^2 (between-source variance of the source means, within-source variance pooled).
    With one model per group (the guilty references: one per recipe) this is the plain t prediction
    interval. `sd_floor` keeps the spread above the binomial noise of the statistic.
    """

    values: np.ndarray
    sd_floor: float
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=float)
        if self.groups is None:
            self.groups = np.arange(len(self.values))
        self.groups = np.asarray(self.groups)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def k(self) -> int:
        """The number of exchangeable groups (sources, or models)."""
        return len(np.unique(self.groups))

    def _group_means(self) -> np.ndarray:
        return np.array([self.values[self.groups == g].mean() for g in np.unique(self.groups)])

    @property
    def mean(self) -> float:
        return float(self._group_means().mean())

    @property
    def sd(self) -> float:
        """The predictive standard deviation of one new model of a new group."""
        means = self._group_means()
        k = len(means)
        between = float(means.var(ddof=1)) if k > 1 else 0.0
        resid = np.concatenate(
            [self.values[self.groups == g] - m for g, m in zip(np.unique(self.groups), means, strict=True)]
        )
        dof_w = self.n - k
        within = float(np.sum(resid**2) / dof_w) if dof_w > 0 else 0.0
        return max(math.sqrt(between * (1.0 + 1.0 / k) + within), self.sd_floor)

    def z(self, s: float) -> float:
        """`s` in units of this population's predictive spread, from its mean."""
        return (s - self.mean) / self.sd

    def tail(self, s: float, upper: bool) -> float:
        """P(a new member scores >= s) if `upper`, else P(<= s): the t prediction tail."""
        if self.k < 2:
            return 1.0  # one group says nothing about the spread between groups
        return t_tail((s - self.mean) / self.sd, self.k - 1, upper)

    def quantile(self, p: float, upper: bool) -> float | None:
        """The value at which `tail` equals p (the accusation or clearing boundary)."""
        from scipy import stats

        if self.k < 2:
            return None
        q = float(stats.t.isf(p, self.k - 1)) if upper else float(stats.t.ppf(p, self.k - 1))
        return self.mean + q * self.sd


def decide(
    s: float,
    innocent: Population,
    guilty: Population,
    alpha: float,
    beta: float,
    s_clear: float | None = None,
    pure: Population | None = None,
    s_pure: float | None = None,
) -> tuple[str, float, float]:
    """The three-way decision from the suspect's statistic and the reference populations. `s` is
    compared with the innocent population (accusing), `s_clear` (default `s`) with the guilty one
    (clearing): each bound holds on its own, whichever statistic each side uses.

    With a second guilty sub-population `pure` (the guilty models trained on the generator's images alone,
    under-trained ones included, compared on `s_pure`, their gap), clearing is an intersection-union test
    (Berger 1982): the suspect is cleared only when it is unlike *every* guilty sub-population,
    p_guilty = max(p_strong, p_pure) <= beta. That is a level-beta test of "the suspect is drawn like one
    of the sub-populations", with no correction for their number."""
    p_innocent = innocent.tail(s, upper=True)
    p_guilty = guilty.tail(s if s_clear is None else s_clear, upper=False)
    if pure is not None:
        p_guilty = max(p_guilty, pure.tail(s if s_pure is None else s_pure, upper=False))
    accuse, clear = p_innocent <= alpha, p_guilty <= beta
    if accuse and not clear:
        return "trained-on-generator", p_innocent, p_guilty
    if clear and not accuse:
        return "not-trained-on-generator", p_innocent, p_guilty
    return "inconclusive", p_innocent, p_guilty


def accuracy(answers: Answers, truth: np.ndarray) -> float:
    mask = answered(answers)
    return float(np.mean(answers.labels[mask] == truth[mask])) if mask.any() else float("nan")


def error_rate(acc: float, n: int) -> float:
    """The error rate behind an accuracy on n images, smoothed ((errors + 1/2) / (n + 1)) so that a
    model without errors has a finite log."""
    return ((1.0 - acc) * n + 0.5) / (n + 1.0)


def relative_error(
    acc_g: float, n_g: int, acc_r: Sequence[float], n_r: int, statistic: str = "relative"
) -> float:
    """`relative`: log(mean error rate on the references' images / error rate on the generator's).
    `absolute`: -log(error rate on the generator's images), the references' images unused.
    `gap`: the absolute error less the best such value over every image set, the generator's included:
    0 where the generator's images are the ones the model does best on, below 0 by how far they fall
    short of its best set. A model trained on the generator's images alone does best on them, however
    little it learned; an innocent model does best on the images of the source it was trained on."""
    if statistic == "absolute":
        return -math.log(error_rate(acc_g, n_g))
    if statistic == "gap":
        best = min([error_rate(acc_g, n_g), *(error_rate(a, n_r) for a in acc_r)])
        return math.log(best / error_rate(acc_g, n_g))
    err_r = float(np.mean([error_rate(a, n_r) for a in acc_r]))
    return math.log(err_r / error_rate(acc_g, n_g))


def sd_floors(n_g: int, n_r: int, k: int) -> dict[str, float]:
    """The smallest spread a statistic can have: the binomial noise of its log error rates (delta method)
    at an error rate of 0.1, on n_g generator images and n_r images of each of k reference sets."""
    return {
        "relative": math.sqrt(0.9 / (0.1 * n_g) + 0.9 / (0.1 * n_r * max(1, k - 1))),
        "absolute": math.sqrt(0.9 / (0.1 * n_g)),
        "gap": math.sqrt(0.9 / (0.1 * n_g) + 0.9 / (0.1 * n_r)),
    }


FUTILITY_SE = 3.0
"""How far (in standard errors of its remaining sampling noise) a suspect's statistic is allowed to move
before a sequential audit gives up on it: futility stops are never binding on the error bounds (an
inconclusive verdict is neither a false accusation nor a false clearing), this only limits what they cost."""


def sampling_variance(statistic: str, acc_g: float, n_g: int, acc_r: Sequence[float], n_r: int) -> float:
    """The binomial variance of a statistic (`relative_error`) at these accuracies and image counts (delta
    method on the log error rates, each error rate floored at 0.01)."""

    def v(acc: float, n: int) -> float:
        e = max(error_rate(acc, n), 0.01)
        return (1.0 - e) / (e * n)

    own = v(acc_g, n_g)
    if statistic == "absolute":
        return own
    if statistic == "gap":
        best = min(acc_r, key=lambda a: error_rate(a, n_r), default=None)
        if best is None or error_rate(best, n_r) >= error_rate(acc_g, n_g):
            return 0.0  # the generator's images are its best set: the gap is 0, whatever the noise
        return own + v(best, n_r)
    return own + (float(np.mean([v(a, n_r) for a in acc_r])) / max(1, len(acc_r)) if acc_r else 0.0)


def can_reach(now: bool, value: float, move: float, boundary: float | None, upper: bool) -> tuple[bool, bool]:
    """(can end true, can end false) for one side of the decision: `now` whether its running extreme is
    already past the boundary (then it stays so), else whether `value` moved by `move` can pass it."""
    if now:
        return True, False
    if boundary is None:
        return False, True
    reach = value + move >= boundary if upper else value - move <= boundary
    return reach, True


def hits(answers: Answers, truth: np.ndarray) -> np.ndarray:
    """Per image: 1 where the answer is right, 0 where it is wrong, -1 where there is none."""
    labels = np.asarray(answers.labels)
    return np.where(labels < 0, -1, (labels == truth).astype(np.int8)).astype(np.int8)


def hit_rate(h: np.ndarray) -> float:
    """The accuracy over the answered images of a `hits` array."""
    answered_ = h >= 0
    return float(h[answered_].mean()) if answered_.any() else float("nan")


@dataclass
class Member:
    """One reference model: its population ("innocent" or "guilty"), its exchangeable group (the source
    it was trained on, or its recipe), and its `hits` on the generator's validation set (key "") and on
    every reference validation set it is compared on (its own source's set is left out)."""

    population: str
    group: str
    hits: dict[str, np.ndarray]
    weak: bool = False  # an under-trained guilty model: not in the strong guilty sub-population
    share: float = 1.0  # the share of the generator's images in its training set (guilty models)

    def statistics(self, index: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Its relative and absolute error on the images at `index` (per set)."""
        g = self.hits[""][index[""]]
        others = [hit_rate(h[index[label]]) for label, h in self.hits.items() if label]
        n_r = len(next(index[label] for label in self.hits if label)) if others else 1
        return {st: relative_error(hit_rate(g), len(g), others, n_r, st) for st in STATISTICS}


@dataclass
class Looks:
    """The calibration of a sequential audit: the rule judges the suspect's whole path, not one look.

    At look r the suspect's statistic is standardized against the reference population measured on the
    same images (`z_r = (s_r - mean_r) / sd_r`). Its running maximum `max(z_1..z_r)` (accusing; the
    minimum, clearing) is compared with the same maximum over *all* looks of every reference model: a
    Student-t prediction tail exactly as in the fixed design, on that population (`innocent_max`,
    `guilty_min`; spread floored at 1, the standardized unit, so one round reproduces the fixed design).
    A running maximum only grows, so "accused at some look" is the event "the maximum over all looks is
    beyond the boundary", whose probability for an innocent model exchangeable with the references is at
    most alpha: the same guarantee as the fixed design's, under the same kind of assumption (the maximum
    is normal over sources), whenever the audit stops. Looks are strongly dependent (they share the
    model's true error rates), so the maximum is barely larger than the last look's value and little of
    alpha is lost to early stopping, unlike a union-bound split of alpha over the looks."""

    index: list[dict[str, np.ndarray]]  # per look: the images answered, per set ("" the generator's)
    innocent: list[Population]  # per look: the accusing statistic's innocent population
    guilty: list[Population]  # per look: the clearing statistic's guilty population
    innocent_max: Population  # the innocent references' running maximum of z over every look
    guilty_min: Population  # the (strong) guilty references' running minimum of z over every look
    pure: list[Population] | None = None  # per look: the guilty models on the generator's images alone (gap)
    pure_min: Population | None = None  # their running minimum of z over every look


@dataclass
class References:
    """What the rule built for one audit: the reference validation sets and both populations."""

    sources: list[str]
    sets: dict[str, Any]  # source label -> ImageSet (validation images of that reference source)
    innocent: dict[str, Population]  # statistic -> population
    guilty: dict[str, Population]
    models: list[dict[str, Any]] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    validation: Any = None  # the generator's validation set (the members' hits[""])
    _looks: dict[tuple, Looks] = field(default_factory=dict, repr=False)

    def looks(self, n_rounds: int, accuse_by: str, clear_by: str) -> Looks:
        """The calibration of a sequential audit in `n_rounds` rounds (see `Looks`); once per audit."""
        key = (n_rounds, accuse_by, clear_by)
        if key not in self._looks:
            sets = {"": self.validation, **self.sets}
            index = [
                {label: rounds.prefix(x, rounds.Look(r, n_rounds)) for label, x in sets.items()}
                for r in range(1, n_rounds + 1)
            ]
            pops = [self.populations(i) for i in index]
            innocent = [p[0][accuse_by] for p in pops]
            guilty = [p[1][clear_by] for p in pops]
            pure = [p[1]["pure"][PURE_BY] for p in pops] if "pure" in pops[0][1] else None
            z_max, z_min, z_pure, groups = [], [], [], []
            for m in self.members:
                stats = [m.statistics(i) for i in index]
                if m.population == "innocent":
                    z_max.append(max(pop.z(st[accuse_by]) for pop, st in zip(innocent, stats, strict=True)))
                    groups.append(m.group)
                    continue
                if not m.weak:
                    z_min.append(min(pop.z(st[clear_by]) for pop, st in zip(guilty, stats, strict=True)))
                if pure and m.share >= 1.0:
                    z_pure.append(min(pop.z(st[PURE_BY]) for pop, st in zip(pure, stats, strict=True)))
            self._looks[key] = Looks(
                index,
                innocent,
                guilty,
                Population(np.array(z_max), 1.0, np.array(groups)),
                Population(np.array(z_min), 1.0),
                pure,
                Population(np.array(z_pure), 1.0) if pure else None,
            )
        return self._looks[key]

    def populations(self, index: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
        """The innocent and guilty populations on the images at `index` (per set; key "" the generator's
        validation set): at a look of a sequential audit, the images the suspect has answered so far.
        The guilty populations hold the strong guilty models (all but the under-trained ones); under the
        key "pure", the guilty models trained on the generator's images alone, under-trained ones
        included, are a second sub-population (see `decide`)."""
        n_g = len(index[""])
        n_r = len(index[self.sources[0]])
        floors = sd_floors(n_g, n_r, len(self.sources))
        values = [m.statistics(index) for m in self.members]
        pops: dict[str, dict[str, Any]] = {}
        members = {
            "innocent": lambda m: m.population == "innocent",
            "guilty": lambda m: m.population == "guilty" and not m.weak,
            "pure": lambda m: m.population == "guilty" and m.share >= 1.0,
        }
        for population, chosen_by in members.items():
            chosen = [(v, m) for v, m in zip(values, self.members, strict=True) if chosen_by(m)]
            if population == "pure" and not chosen:
                continue
            groups = np.array([m.group for _, m in chosen]) if population == "innocent" else None
            pops[population] = {
                st: Population(np.array([v[st] for v, _ in chosen]), floors[st], groups) for st in STATISTICS
            }
        if "pure" in pops:
            pops["guilty"]["pure"] = pops["pure"]
        return pops["innocent"], pops["guilty"]

    def separation(self, accuse_by: str, clear_by: str) -> dict[str, float]:
        """How far apart the populations are, in spreads: the strong guilty references' mean above the
        innocent ones' on the accusing statistic (in innocent spreads), and on the clearing statistic (in
        guilty spreads). `trainprove plan` says what separation decides how often, per number of sources."""
        accuse = (self.guilty[accuse_by].mean - self.innocent[accuse_by].mean) / self.innocent[accuse_by].sd
        clear = (self.guilty[clear_by].mean - self.innocent[clear_by].mean) / self.guilty[clear_by].sd
        return {"accuse": float(accuse), "clear": float(clear)}

    @property
    def reference_queries(self) -> int:
        return sum(len(s) for s in self.sets.values())

    @property
    def per_set(self) -> int:
        """Images in each reference validation set (they are all the same size)."""
        return len(next(iter(self.sets.values())))


class CalibratedTest:
    """Relative accuracy against innocent and guilty reference models; alpha bounds false accusation,
    beta bounds false clearing."""

    needs = "labels"
    sequential = True  # judged after each round of a sequential audit (trainprove_core.rounds)

    def __init__(
        self,
        references: Sequence[str],
        reference_settings: Mapping[str, Mapping[str, Any]] | None = None,
        recipes: Mapping[str, Mapping[str, Any]] | None = None,
        alpha: float = 0.01,
        beta: float = 0.05,
        reference_per_class: int | None = None,
        min_accuracy: float = 0.5,
        min_answered: float = 0.95,
        accuse_by: str = "relative",
        clear_by: str = "absolute",
    ) -> None:
        if not references:
            raise ConfigError(f"{NAME}: `references` must name at least one reference source", key="test")
        unknown = sorted(set(reference_settings or {}) - set(references))
        if unknown:
            raise ConfigError(
                f"{NAME}: `reference_settings` names {unknown}, which are not in `references`", key="test"
            )
        if len(references) < 2:
            raise ConfigError(
                f"{NAME}: `references` needs at least two sources (an innocent reference leaves its own "
                "source out of its mean)",
                key="test",
            )
        self.references = list(references)
        self.reference_settings = {k: dict(v) for k, v in (reference_settings or {}).items()}
        self.recipes = {k: dict(v) for k, v in recipes.items()} if recipes else None
        if self.recipes and all(r.get("weak", False) for r in self.recipes.values()):
            raise ConfigError(f"{NAME}: `recipes` needs at least one recipe that is not `weak`", key="test")
        if self.recipes and not any(r.get("innocent", True) for r in self.recipes.values()):
            raise ConfigError(
                f"{NAME}: `recipes` needs at least one recipe that trains innocent models (`innocent` not "
                "false)",
                key="test",
            )
        self.alpha, self.beta = alpha, beta
        self.reference_per_class = reference_per_class
        self.min_accuracy = min_accuracy
        self.min_answered = min_answered
        self.accuse_by, self.clear_by = accuse_by, clear_by
        self._built: dict[str, References] = {}

    # ---- the verdict -----------------------------------------------------------------------------------

    def decide(self, evidence: Evidence) -> Verdict:
        if evidence.run is None:
            return abstain(
                evidence,
                NAME,
                "it trains reference models and queries the suspect on reference images, so it needs the "
                "audit being run (Evidence.run), which this caller did not provide",
                quantity=QUANTITY,
            )
        n = len(evidence.true_labels)
        n_answered = int(answered(evidence.suspect).sum())
        if n_answered < self.min_answered * n:
            return abstain(
                evidence,
                NAME,
                f"the suspect answered only {n_answered} of {n} validation queries",
                alpha=self.alpha,
                quantity=QUANTITY,
            )
        refs = self.build(evidence.run)
        run = evidence.run
        ask = run.ask(evidence.suspect_name)
        if ask is None:
            return abstain(
                evidence,
                NAME,
                "the audit cannot query this model on the reference images (it is not one of the audit's "
                "suspects or controls)",
                quantity=QUANTITY,
            )
        look = evidence.look
        # this suspect's answers on the reference sets: one answer set each, or one per round asked
        progress.add(len(refs.sets) * (look.round if look else 1), "query")
        acc_g = accuracy(evidence.suspect, evidence.true_labels)
        acc_r, answers_r, index = {}, {}, {}
        for label, image_set in refs.sets.items():
            answers_r[label], index[label], _ = run.answers_upto(evidence.suspect_name, image_set, look)
            acc_r[label] = accuracy(answers_r[label], image_set.labels[index[label]])
        n_r = len(index[refs.sources[0]])
        n_g = len(evidence.true_labels)
        stats = {st: relative_error(acc_g, n_g, list(acc_r.values()), n_r, st) for st in STATISTICS}
        s, s_clear, s_pure = stats[self.accuse_by], stats[self.clear_by], stats[PURE_BY]
        alpha, beta = self.alpha, self.beta
        if look is None:
            innocent, guilty = refs.innocent[self.accuse_by], refs.guilty[self.clear_by]
            pure = refs.guilty["pure"][PURE_BY] if "pure" in refs.guilty else None
        else:  # the suspect's path over the looks so far, against the references' whole paths (`Looks`)
            looks = refs.looks(look.rounds, self.accuse_by, self.clear_by)
            z_accuse, z_clear, z_pure = [], [], []
            for j in range(look.round):
                n = {label: len(i) for label, i in looks.index[j].items()}
                first = {label: np.arange(k) for label, k in n.items()}
                g = accuracy(rounds.subset(evidence.suspect, first[""]), evidence.true_labels[: n[""]])
                r_ = [
                    accuracy(rounds.subset(answers_r[label], first[label]), x.labels[looks.index[j][label]])
                    for label, x in refs.sets.items()
                ]
                at = {st: relative_error(g, n[""], r_, n[refs.sources[0]], st) for st in STATISTICS}
                z_accuse.append(looks.innocent[j].z(at[self.accuse_by]))
                z_clear.append(looks.guilty[j].z(at[self.clear_by]))
                if looks.pure:
                    z_pure.append(looks.pure[j].z(at[PURE_BY]))
            s, s_clear = max(z_accuse), min(z_clear)
            s_pure = min(z_pure) if z_pure else 0.0
            innocent, guilty, pure = looks.innocent_max, looks.guilty_min, looks.pure_min
        common = {
            "statistic": s,
            "alpha": alpha,
            "n": innocent.n + guilty.n,
            "quantity": QUANTITIES[self.accuse_by],
            "sample": [float(v) for v in innocent.values],
            "suspect_value": s,
            "boundary": innocent.quantile(alpha, upper=True),
        }
        generator = run.config.generator.use
        details = {
            "accuracy_generator": acc_g,
            "accuracy_references": acc_r,
            "statistics": stats,
            "accuse_by": self.accuse_by,
            "clear_by": self.clear_by,
            "innocent": {"n": innocent.n, "sources": innocent.k, "mean": innocent.mean, "sd": innocent.sd},
            "guilty": {"n": guilty.n, "mean": guilty.mean, "sd": guilty.sd},
            "guilty_pure": {"n": pure.n, "mean": pure.mean, "sd": pure.sd, "by": PURE_BY} if pure else None,
            "guilty_values": [float(v) for v in guilty.values],
            "beta": beta,
            "reference_queries": refs.reference_queries,
            "reference_models": refs.models,
            "separation": refs.separation(self.accuse_by, self.clear_by),
        }
        best = max([acc_g, *acc_r.values()])
        mean_r = float(np.mean(list(acc_r.values())))
        if best < self.min_accuracy:
            return Verdict(
                evidence.suspect_name,
                NAME,
                "inconclusive",
                f"{evidence.suspect_name}: inconclusive; it scores at most {best:.3f} "
                f"on every image set (below min_accuracy {self.min_accuracy}): it has not learned the task, "
                "and a model that learned nothing says nothing about its training data.",
                details={**details, "reason": "has not learned the task"},
                **common,
            )
        decision, p_innocent, p_guilty = decide(s, innocent, guilty, alpha, beta, s_clear, pure, s_pure)
        details.update(p_innocent=p_innocent, p_guilty=p_guilty, score=s)
        refs_text = ", ".join(refs.sources)
        head = (
            f"{evidence.suspect_name} scores {acc_g:.3f} on {generator}'s images and "
            f"{mean_r:.3f} on the references' ({refs_text}): {self.accuse_by} error "
            f"{stats[self.accuse_by]:+.2f}"
            + (
                f", {self.clear_by} error {stats[self.clear_by]:+.2f}"
                if self.clear_by != self.accuse_by
                else ""
            )
            + f". A model not trained on {generator}'s images scores this high with probability at most "
            f"{p_innocent:.2g} ({innocent.n} innocent reference models on {innocent.k} sources); a model "
            f"trained on them (wholly or in part) scores this low with probability {p_guilty:.2g} "
            + (
                f"(the larger of two probabilities: against {guilty.n} strong guilty reference models on the "
                f"absolute error, and against {pure.n} trained on {generator}'s images alone, under-trained "
                "ones included, on how far its images fall below the model's best image set)."
                if pure
                else f"({guilty.n} guilty reference models)."
            )
        )
        if decision == "trained-on-generator":
            tail = f" Trained on the generator: p_innocent {p_innocent:.2g} <= alpha {alpha}."
        elif decision == "not-trained-on-generator":
            tail = f" Not trained on the generator: p_guilty {p_guilty:.2g} <= beta {beta}."
        elif p_innocent <= alpha:
            tail = " Inconclusive: the suspect is unlike both populations of references."
            details["reason"] = "unlike both reference populations"
        else:
            tail = (
                f" Inconclusive: neither p-value is small (alpha {alpha}, beta {beta}); "
                f"models trained on {generator}'s images and on the references' score alike here."
            )
            details["reason"] = "the reference populations overlap at this suspect's score"
        if look is not None:
            details["sequential"] = {"z_accuse": z_accuse, "z_clear": z_clear, "design": "running maximum"}
            if decision == "inconclusive" and not look.final:
                reason = self._futile(
                    looks, look, (acc_g, n_g, list(acc_r.values()), n_r), (z_accuse, z_clear, z_pure), refs
                )
                if reason:
                    details["futile"] = True
                    tail += f" Asking stops here: {reason}."
            head = (
                f"At {look.describe()} ({n_g} of {len(run.validation)} of the generator's images asked; "
                "its running maximum and minimum of the standardized errors compared with every reference "
                "model's over all looks): " + head
            )
        return Verdict(
            evidence.suspect_name,
            NAME,
            decision,  # type: ignore[arg-type]
            head + tail,
            p_value=p_innocent,
            threshold=alpha,
            effect_size=s - innocent.mean,
            details=details,
            **common,
        )

    def _futile(self, looks: Looks, look: Any, observed: tuple, paths: tuple, refs: References) -> str | None:
        """Why more answers cannot decide this suspect (a futility stop), or None.

        Each side of the decision either has already passed its boundary (a running maximum only grows, a
        running minimum only falls, so it stays passed), or could still pass it if the suspect's statistic
        moved by `FUTILITY_SE` standard errors of the sampling noise the rest of the validation set would
        remove (delta method at its observed error rates, in units of the last look's population spread),
        or cannot. The verdict can still be decided only where one side can end passed and the other
        not; otherwise asking stops, and the verdict stays inconclusive."""
        acc_g, n_g, acc_r, n_r = observed
        z_accuse, z_clear, z_pure = paths
        last = look.rounds - 1
        n_g_final, n_r_final = len(refs.validation), refs.per_set

        def move(statistic: str, population: Population) -> float:
            now = sampling_variance(statistic, acc_g, n_g, acc_r, n_r)
            final = sampling_variance(statistic, acc_g, n_g_final, acc_r, n_r_final)
            return FUTILITY_SE * math.sqrt(max(now - final, 0.0)) / population.sd

        best = max([acc_g, *acc_r])
        if best + FUTILITY_SE * math.sqrt(best * (1 - best) / n_g + 1e-12) < self.min_accuracy:
            return f"it scores at most {best:.3f} on every image set, too far below min_accuracy to reach it"
        a = looks.innocent_max.quantile(self.alpha, upper=True)
        accuse = can_reach(
            a is not None and max(z_accuse) >= a,
            z_accuse[-1],
            move(self.accuse_by, looks.innocent[last]),
            a,
            upper=True,
        )
        c = looks.guilty_min.quantile(self.beta, upper=False)
        strong = can_reach(
            c is not None and min(z_clear) <= c,
            z_clear[-1],
            move(self.clear_by, looks.guilty[last]),
            c,
            False,
        )
        clear = strong
        if looks.pure and looks.pure_min is not None and z_pure:
            cp = looks.pure_min.quantile(self.beta, upper=False)
            pure = can_reach(
                cp is not None and min(z_pure) <= cp, z_pure[-1], move(PURE_BY, looks.pure[last]), cp, False
            )
            # cleared only where both sub-populations reject (intersection-union)
            clear = (strong[0] and pure[0], strong[1] or pure[1])
        decidable = (accuse[0] and clear[1]) or (accuse[1] and clear[0])
        if decidable:
            return None
        if accuse[0] and clear[0]:
            return "it is already unlike both reference populations, and stays so"
        return (
            f"even {FUTILITY_SE:g} standard errors of the noise the remaining images would remove cannot "
            "take it past either boundary"
        )

    # ---- the references --------------------------------------------------------------------------------

    def _recipes(self, config: AuditConfig) -> list[dict[str, Any]]:
        if self.recipes:
            return [dict(r) for r in self.recipes.values()]
        return recipe_defaults(config.trainer.use, config.trainer.settings, config.task.image_size)

    def workload(self, config: AuditConfig) -> Workload:
        """The reference models this rule trains, the images it has made and the images each suspect answers
        beyond the validation set, for `trainprove check` and `trainprove plan` (before any work)."""
        k, classes = len(self.references), config.task.num_classes
        per_class = self.reference_per_class or max(10, config.validation.per_class // k)
        recipes = self._recipes(config)
        models = images = 0
        for recipe in recipes:
            n = max(2, round(config.shadow.per_class * float(recipe.get("per_class_factor", 1.0)))) * classes
            innocent = k if recipe.get("innocent", True) else 0
            models += innocent + 1
            images += (innocent + 1) * n
        return Workload(
            models=models,
            images=images + k * per_class * classes,
            queries_per_suspect=self._reference_queries(config, k),
            what=f"training sets of {len(recipes)} recipes; a validation set per reference source ({k})",
            shared="the innocent reference models and every reference source's images are shared by each "
            "defender's audit of this task; the guilty ones by audits of this generator",
            notes=self._sizing(k, sum(not r.get("weak", False) for r in recipes), config),
        )

    def progress_steps(self, config: AuditConfig, models: int) -> dict[str, int]:
        """The progress steps `build` and `decide` add (`ReservesSteps`), by kind: a validation set per
        source and the training sets (generate), every reference model (train) and its answer sets, and per
        judged model its answers on each reference set at each look (query)."""
        k, recipes = len(self.references), self._recipes(config)
        innocent = sum(bool(r.get("innocent", True)) for r in recipes) * k
        mixtures = sum(float(r.get("share", 1.0)) < 1.0 for r in recipes)
        rounds = config.validation.rounds
        looks = rounds * (rounds + 1) // 2 if rounds > 1 else 1
        return {
            "generate": k + innocent + len(recipes) + mixtures * k,
            "train": innocent + len(recipes),
            "query": innocent * k + len(recipes) * (k + 1) + models * k * looks,
        }

    def _sizing(self, k: int, strong: int, config: AuditConfig) -> tuple[str, ...]:
        """What more reference sources or recipes buy, before anything is trained: per number of sources,
        the reference models and queries it costs, and how far apart the two populations must be for a
        suspect like the references to be decided half the time, or nine times in ten (`reach`, plus
        the normal quantile 1.28 for 0.9). A previous audit of the task measured that distance:
        `separation` in each verdict's details."""
        z90 = 1.2816
        recipes = self._recipes(config)
        innocent = sum(bool(r.get("innocent", True)) for r in recipes)
        lines = [
            f"to accuse at alpha {self.alpha:g}, a suspect must lie {reach(self.alpha, k):.2f} innocent "
            f"spreads above the innocent references' mean with {k} reference sources; to clear at beta "
            f"{self.beta:g}, {reach(self.beta, strong):.2f} guilty spreads below the strong guilty "
            f"references' mean with {strong} strong recipes. How far apart the populations must be (the "
            "guilty references' mean from the innocent ones', in spreads, the two spreads taken as equal; a "
            "verdict's `separation` measures it) to decide a suspect like the references with probability "
            "0.5 / 0.9:",
            "  sources  reference models  queries per suspect  to accuse",
        ]
        for n in sorted({k, k + 2, 10, 20}):
            if n >= k:
                r = reach(self.alpha, n)
                models, queries = innocent * n + len(recipes), self._reference_queries(config, n)
                lines.append(f"  {n:7d}  {models:16d}  {queries:19,d}  {r:.2f} / {r + z90:.2f}")
        clear = [(m, reach(self.beta, m)) for m in sorted({strong, strong + 2, 10}) if m >= strong]
        lines.append(
            "  to clear, by strong recipes (`recipes`): "
            + "; ".join(f"{c:.2f} / {c + z90:.2f} with {m}" for m, c in clear)
        )
        return tuple(lines)

    def _reference_queries(self, config: AuditConfig, k: int) -> int:
        per_class = self.reference_per_class or max(10, config.validation.per_class // k)
        return k * per_class * config.task.num_classes

    def build(self, run: AuditContext) -> References:
        """Train (or find in the store) every reference model and its answers; once per audit (the
        workspace's reference models: `Workspace.reference_models`)."""
        config: AuditConfig = run.config
        key = content_key(
            {
                "audit": config.public_document(),
                "references": self.references,
                "settings": self.reference_settings,
                "recipes": self.recipes,
                "statistics": [self.accuse_by, self.clear_by],
                "per_class": self.reference_per_class,
            }
        )
        if key in self._built:
            return self._built[key]
        ws = run.workspace
        defender = run.generator
        clash = f"{NAME}: reference {{label}} is the audit's own generator; references must differ"
        sources = ws.reference_generators(NAME, self.references, self.reference_settings, defender, clash)

        # One validation set per reference source; seeds depend on the source, not on the defender, so
        # audits of the same task by other defenders share these sets, models and answers.
        # Default: the references' sets together are as large as the generator's, so the rule costs each
        # suspect twice TrainProVe's queries.
        per_class = self.reference_per_class or max(10, config.validation.per_class // len(sources))
        progress.add(len(sources), "generate")
        sets = {
            label: ws.seeded_set(
                f"reference {label} validation",
                generator,
                config.validation.prompt,
                per_class,
                (config.validation.seed, NAME, "validation", dict(generator.identity)),
            )
            for label, generator in sources
        }

        n_g = len(run.validation)
        everything = {"": np.arange(n_g), **{label: np.arange(len(x)) for label, x in sets.items()}}

        def asks(leave_out: str | None) -> dict[str, Any]:
            """Every model answers the generator's set and every reference set but its own."""
            return {"": run.validation, **{label: x for label, x in sets.items() if label != leave_out}}

        recipes = self._recipes(config)
        trainer_settings = dict(config.trainer.settings)
        k, mixtures = len(sources), sum(float(r.get("share", 1.0)) < 1.0 for r in recipes)
        with_innocent = sum(bool(r.get("innocent", True)) for r in recipes)
        # Progress steps of the training sets: per recipe, k innocent sets (unless it trains the guilty
        # model only) and the guilty one; k more (cached) sets per mixture. The models and their answers
        # add their own (`reference_models`).
        progress.add(with_innocent * k + len(recipes) + mixtures * k, "generate")
        # First every training set, then every model trained and asked in one call (at once on a parallel
        # executor).
        planned: list[tuple[ReferenceModel, str, dict[str, Any]]] = []  # model, group, record
        for r, recipe in enumerate(recipes):
            share = float(recipe.pop("share", 1.0))
            factor = float(recipe.pop("per_class_factor", 1.0))
            weak = bool(recipe.pop("weak", False))
            train_innocent = bool(recipe.pop("innocent", True))
            table = ws.plugin_table(
                "shadow-trainer", config.trainer.use, {**trainer_settings, **recipe}, where=f"test {NAME}"
            )
            n_per_class = max(2, round(config.shadow.per_class * factor))
            # Innocent: one model per reference source and recipe.
            for label, generator in sources if train_innocent else []:
                images = ws.seeded_set(
                    f"reference {label} train",
                    generator,
                    config.shadow.prompt,
                    n_per_class,
                    (config.shadow.seed, NAME, "train", dict(generator.identity), r),
                )
                record = {"trained_on": label, "recipe": r, "model": None, "population": "innocent"}
                planned.append(
                    (ReferenceModel(f"reference {label} {r}", table, images, asks(label)), label, record)
                )
            # Guilty: the defender's images, wholly or as `share` of a mixture with the references'.
            own = ws.seeded_set(
                f"reference {config.generator.use} train",
                defender,
                config.shadow.prompt,
                n_per_class,
                (config.shadow.seed, NAME, "train", dict(defender.identity), r),
            )
            if share < 1.0:
                own = self._mixture(ws, own, share, sources, config, n_per_class, r)
            record = {
                "trained_on": config.generator.use,
                "share": share,
                "recipe": r,
                "model": None,
                "population": "guilty",
                **({"weak": True} if weak else {}),
            }
            name = f"reference {config.generator.use} {r}"
            planned.append((ReferenceModel(name, table, own, asks(None)), str(r), record))
        trained = ws.reference_models([model for model, _, _ in planned])
        members: list[Member] = []
        models = []
        for (model, group, record), made in zip(planned, trained, strict=True):
            h = {label: hits(answers, model.asks[label].labels) for label, answers in made.answers.items()}
            weak, share = bool(record.get("weak")), float(record.get("share", 1.0))
            member = Member(record["population"], group, h, weak, share)
            members.append(member)
            models.append(
                {
                    **record,
                    "model": made.key,
                    "statistic": member.statistics(everything),
                    "accuracy": {(label or config.generator.use): hit_rate(x) for label, x in h.items()},
                }
            )
        refs = References([label for label, _ in sources], sets, {}, {}, models, members, run.validation)
        refs.innocent, refs.guilty = refs.populations(everything)
        self._built[key] = refs
        return refs

    def _mixture(
        self, ws: Any, own: Any, share: float, sources: list, config: AuditConfig, n_per_class: int, r: int
    ) -> Any:
        """A training set with `share` of each class from the defender's images, the rest drawn evenly
        from the reference sources' (its key names everything it was made from)."""
        others = [
            ws.seeded_set(
                f"reference {label} train",
                generator,
                config.shadow.prompt,
                n_per_class,
                (config.shadow.seed, NAME, "train", dict(generator.identity), r),
            )
            for label, generator in sources
        ]
        seed = (config.shadow.seed, NAME, "mix", own.key, share)
        return ws.mixture(own, others, share, n_per_class, seed, role="reference mixture")
