"""What decision tests register and read: looks, the audit context, evidence, verdicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .makers import Answers, Generator, ImageSet
from .options import Option

if TYPE_CHECKING:
    import numpy as np

    from ..task import Task

# --------------------------------------------------------------------------------------------------------
# Decision tests
# --------------------------------------------------------------------------------------------------------

Decision = Literal["trained-on-generator", "not-trained-on-generator", "inconclusive"]
DECISIONS: tuple[str, ...] = ("trained-on-generator", "not-trained-on-generator", "inconclusive")


RHO = 2.0
"""How a sequential audit spends alpha over its looks: a share growing as (r / K) ** RHO (`rounds`)."""


@dataclass(frozen=True)
class Look:
    """Look `round` (1-based) of `rounds`: the suspect has answered the first `round` slices."""

    round: int
    rounds: int

    def __post_init__(self) -> None:
        if not 1 <= self.round <= self.rounds:
            raise ValueError(f"look {self.round} of {self.rounds}")

    @property
    def final(self) -> bool:
        return self.round == self.rounds

    @property
    def fraction(self) -> float:
        return self.round / self.rounds

    def spend(self, alpha: float) -> float:
        """The share of `alpha` this look may spend (`trainprove_core.rounds`); they sum to alpha."""
        before = ((self.round - 1) / self.rounds) ** RHO
        return alpha * (self.fraction**RHO - before)

    def describe(self) -> str:
        return f"look {self.round} of {self.rounds}"


@runtime_checkable
class AuditContext(Protocol):
    """The audit being run, as a decision test sees it (`Evidence.run`; the engine's `AuditRun`).

    `config` is the audit file (an `AuditConfig`), `workspace` the cached building blocks (image sets,
    models, answers: the engine's `Workspace`), `generator` the audit's generator, `validation` the
    validation set and `shadow_answers` the shadow's answers on it. `ask(name)` queries the model judged
    as `name` on other images (None for a name the audit does not hold); `answers_upto(name, image_set,
    look)` gives its answers on the images a look has asked, their indices and the answer sets' keys;
    `evidence(name, answers)` builds evidence on other answers to the validation set."""

    config: Any
    workspace: Any
    task: Task

    @property
    def generator(self) -> Generator: ...

    @property
    def validation(self) -> ImageSet: ...

    @property
    def shadow_answers(self) -> Answers: ...

    def ask(self, name: str) -> Callable[[ImageSet], Answers] | None: ...

    def answers_upto(
        self, name: str, image_set: ImageSet, look: Look | None
    ) -> tuple[np.ndarray | Any, np.ndarray, list[str]]: ...

    def evidence(self, name: str, answers: Answers) -> Evidence: ...


@dataclass
class Evidence:
    """Everything a decision test may look at for one suspect.

    `true_labels` are the validation set's classes (task indices), `batches` the partition of the
    validation set into query batches (index arrays, the paper's n batches). `shadow` and `suspect` are
    the two models' answers on the validation set. `run` is the audit being run (an `AuditContext`): a test
    that needs more (reference models on other sources, another image set, the audit's settings) asks
    `run.workspace` for it, cached like everything else; it is None where a caller judges bare answers.

    `look` is set in a sequential audit (`[validation] rounds` > 1, `trainprove_core.rounds`): the
    evidence is then the images answered so far, and only a test that declares `sequential = True` is
    shown it before the last look; such a test spends `look.spend(alpha)` of its alpha at this look and
    returns `inconclusive` when it cannot decide yet (it is shown the next look).
    """

    task: Task
    true_labels: np.ndarray
    batches: list[np.ndarray]
    shadow: Answers
    suspect: Answers
    suspect_name: str
    run: AuditContext | None = None
    look: Look | None = None


@dataclass
class Verdict:
    """The outcome of one decision test on one suspect.

    `statistic` and `threshold` are in the test's own units (e.g. Grubbs G and G_crit); `p_value` where the
    test has one. For the report's plot, `sample` is the reference sample (e.g. the shadow's per-batch
    accuracies), `suspect_value` the suspect's summary in the same units and `boundary` the value in those
    units where the decision flips. `explanation` is one sentence a person can read.
    """

    suspect: str
    test: str
    decision: Decision
    explanation: str
    statistic: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    alpha: float | None = None
    n: int | None = None
    effect_size: float | None = None
    sample: list[float] = field(default_factory=list)
    suspect_value: float | None = None
    boundary: float | None = None
    quantity: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, not {self.decision!r}")


@runtime_checkable
class DecisionTest(Protocol):
    """Turns evidence into a verdict.

    `needs` is "labels" or "probabilities": a test that needs probabilities is not run against a
    label-only suspect (the report says so). `decide` returns a `Verdict`.

    A test may also declare `sequential = True` (`Sequential`): in an audit with `[validation] rounds` > 1
    it is then judged after every round on the answers so far (`evidence.look`), and the audit stops
    asking once every test has decided (see `trainprove_core.rounds`). A test without it is judged once,
    on every round, so an audit that has one asks the whole set. Before the last look a sequential test
    may make an inconclusive verdict final with `details["futile"] = True` (more answers cannot decide
    it: a futility stop); it is never binding on the error bounds, and saves the remaining queries.
    """

    needs: Literal["labels", "probabilities"]

    def decide(self, evidence: Evidence) -> Verdict: ...


@runtime_checkable
class Sequential(Protocol):
    """A decision test that declares `sequential = True`: judged after every round of a sequential audit."""

    sequential: bool


@dataclass(frozen=True)
class Workload:
    """What a decision test adds to an audit, stated before any work (`trainprove check`, `trainprove plan`):
    the models it trains, the images it has made, and the images each suspect answers beyond the
    validation set. `shared` says what of it other audits reuse from the store (one line, or "")."""

    models: int = 0
    images: int = 0
    queries_per_suspect: int = 0
    what: str = ""
    shared: str = ""
    notes: tuple[str, ...] = ()  # what the defender could change and what it buys ("  " starts a table row)


@runtime_checkable
class Plans(Protocol):
    """A decision test that states its `Workload` for an audit's configuration before any work."""

    def workload(self, config: Any) -> Workload: ...


@runtime_checkable
class ReservesSteps(Protocol):
    """A decision test that adds progress steps along the way (`progress.add`: reference sets, models,
    their answers) and says how many before the first step, so the audit's plan (and its estimate of what
    is left) is whole from the start: `progress_steps(config, models)` for an audit judging `models` models
    (suspects and controls), cached ones included (the store skips them as done): a count, or counts by
    kind ({"generate": ..., "train": ..., "query": ...}, the first word of the steps' descriptions), which
    lets the estimate of what is left price a training step apart from an answer set."""

    def progress_steps(self, config: Any, models: int) -> int | Mapping[str, int]: ...


@dataclass(frozen=True)
class DecisionTestSpec:
    """A decision test a plugin offers. `factory(settings)` builds it from a `[[test]]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], DecisionTest]
    description: str
    options: tuple[Option, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""
