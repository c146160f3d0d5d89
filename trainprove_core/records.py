"""The typed records that plugins hand to the core, and the small protocols their objects follow.

Registry hooks return *specs* (frozen dataclasses with a name, a factory, a one-line description and the
audit-file keys the plugin owns). Factories build the working objects (a `Generator`, a `SuspectAdapter`, a
`ShadowTrainer`, a `DecisionTest`) from the plugin's validated settings. `KINDS` has one row per kind of
registration (its hook, spec type, audit-file table and titles); everything else derives from it. Nothing
here imports numpy at module level, so the CLI stays fast to start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from .audit import AuditRun
    from .rounds import Look
    from .task import Task

REQUIRED: Any = object()
"""Sentinel default of an `Option` that the audit file must set."""

OptionType = Literal["str", "int", "float", "bool", "path", "path-or-id", "list[str]", "list[float]", "table"]


@dataclass(frozen=True)
class Option:
    """One key a plugin owns in its audit-file table.

    `type` is one of `OptionType`: "path" is a local path relative to the audit file; "path-or-id" is a
    local directory if one exists there, else kept as written (a hub id such as `org/name`). `choices`
    restricts a `str` option; `min` and `max` bound an `int` or `float` option, inclusively (None:
    unbounded; an `int` option without `min` must not be negative); `secret` keeps the value out of
    reports, manifests and cache keys (use it for anything that names a credential).

    `check`, when given, is called as `check(value, settings)` while an audit file is loaded, after every
    key of the table was validated (`settings` holds them, defaults filled in). It raises `ValueError`
    with a sentence for the user when the value cannot be used (a model that is not there, say); the core
    prefixes the file, the table and the key. It must be cheap: no downloads, no model loading. It is not
    called for `None` values.
    """

    name: str
    type: OptionType
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    secret: bool = False
    min: float | None = None
    max: float | None = None
    check: Callable[[Any, Mapping[str, Any]], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise TypeError(
                f"option {self.name!r}: min and max apply to int and float options, not {self.type}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"option {self.name!r}: min {self.min} is above max {self.max}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# --------------------------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make: the prompt, the class it should show, and the seed that fixes it."""

    prompt: str
    class_index: int
    class_name: str
    seed: int


@runtime_checkable
class Generator(Protocol):
    """The defender's model (or any image source) turned into a function of requests.

    `identity` is a JSON-serialisable mapping that changes whenever the images would change (model id and
    revision or weight hash, sampler settings, library versions); the store keys image sets on it.
    `generate` returns uint8 RGB images, shape (N, H, W, 3), at the generator's native resolution; image
    i must depend only on request i (its seed), never on the batch it shared, so a set can be made in
    chunks and resumed.
    """

    identity: Mapping[str, Any]
    native_size: int
    batch_size: int

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray: ...


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator a plugin offers. `factory(settings)` builds it from the validated `[generator]` table
    (or `[negative_control]` table)."""

    name: str
    factory: Callable[[Mapping[str, Any]], Generator]
    description: str
    options: tuple[Option, ...] = ()
    classes: tuple[str, ...] | None = None
    """The class names the generator is conditioned on, in index order, for a generator that is
    conditioned on `GenerationRequest.class_index` rather than on the prompt (None: any task). An audit
    whose `[task] classes` differ from them, in names or order, is refused when it is loaded."""


@dataclass
class ImageSet:
    """Images (uint8, N x S x S x 3 at the task's size) with their classes, and the key they are stored
    under. `role` says what the set is for ("shadow", "validation", or a name a decision test chose);
    `identity` is everything that made it (its `key` is that identity's content hash)."""

    role: str
    key: str
    images: np.ndarray
    labels: np.ndarray
    identity: dict[str, Any]

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------------------------
# Suspect adapters
# --------------------------------------------------------------------------------------------------------


@dataclass
class Answers:
    """What a model said about a set of images.

    `labels[i]` is the predicted class of image i as an index into the *task's* class list (the core maps
    adapter label spaces to the task's before anyone else sees answers), or -1 where the model did not
    answer image i (a refused request): decision tests compute over answered images only
    (`trainprove_core.evidence.answered`) and abstain when too few were answered. `probabilities` is (N, C) or
    None for a label-only model.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class QueryCost:
    """How asking costs. `budget` is the most images the audit may send (None: unlimited)."""

    remote: bool = False
    budget: int | None = None


@runtime_checkable
class SuspectAdapter(Protocol):
    """How to ask a suspect model.

    `label_names` is the suspect's label space in its own index order (None: it uses the task's order).
    `returns` says whether `predict` fills `probabilities`. `predict` takes uint8 RGB images (N, H, W, 3)
    at the task's size and returns `Answers` whose labels index `label_names` (or the task's classes);
    labels may also be returned as class-name strings (dtype object/str), which the core maps by name.
    `identity` keys the answer cache: it must change when the answers could change, and must never
    contain a credential. An adapter that holds resources (a connection pool) may define `close()`; the
    audit calls it when it is done with the suspect.
    """

    identity: Mapping[str, Any]
    label_names: Sequence[str] | None
    returns: Literal["labels", "probabilities"]
    batch_size: int
    cost: QueryCost

    def predict(self, images: np.ndarray) -> Answers: ...


@dataclass(frozen=True)
class SuspectAdapterSpec:
    """A suspect adapter a plugin offers. `factory(settings, task)` builds it from a `[[suspect]]` table."""

    name: str
    factory: Callable[[Mapping[str, Any], Task], SuspectAdapter]
    description: str
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------------------------------------
# Shadow trainers
# --------------------------------------------------------------------------------------------------------


@runtime_checkable
class ShadowTrainer(Protocol):
    """Trains the defender's shadow model and opens it for querying.

    `train` writes everything it needs under `out_dir` (an empty directory the store commits atomically
    when `train` returns). `open` turns such a directory into a `SuspectAdapter`, so the shadow model is
    queried exactly like a suspect.
    """

    identity: Mapping[str, Any]

    def train(self, images: np.ndarray, labels: np.ndarray, task: Task, out_dir: Path) -> None: ...

    def open(self, model_dir: Path, task: Task) -> SuspectAdapter: ...


@dataclass(frozen=True)
class ShadowTrainerSpec:
    """A shadow trainer a plugin offers. `factory(settings)` builds it from the `[shadow]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], ShadowTrainer]
    description: str
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------------------------------------
# Decision tests
# --------------------------------------------------------------------------------------------------------

Decision = Literal["trained-on-generator", "not-trained-on-generator", "inconclusive"]
DECISIONS: tuple[str, ...] = ("trained-on-generator", "not-trained-on-generator", "inconclusive")


@dataclass
class Evidence:
    """Everything a decision test may look at for one suspect.

    `true_labels` are the validation set's classes (task indices), `batches` the partition of the
    validation set into query batches (index arrays, the paper's n batches). `shadow` and `suspect` are
    the two models' answers on the validation set. `run` is the audit being run (`AuditRun`): a test that
    needs more (reference models on other sources, another image set, the audit's settings) asks
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
    run: AuditRun | None = None
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

    A test may also declare `sequential = True`: in an audit with `[validation] rounds` > 1 it is then
    judged after every round on the answers so far (`evidence.look`), and the audit stops asking once
    every test has decided (see `trainprove_core.rounds`). A test without it is judged once, on every
    round, so an audit that has one asks the whole set.
    """

    needs: Literal["labels", "probabilities"]

    def decide(self, evidence: Evidence) -> Verdict: ...


@dataclass(frozen=True)
class DecisionTestSpec:
    """A decision test a plugin offers. `factory(settings)` builds it from a `[[test]]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], DecisionTest]
    description: str
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------------------------------------
# Executors (the seam for distributed engines)
# --------------------------------------------------------------------------------------------------------


@runtime_checkable
class Executor(Protocol):
    """Runs independent chunks of work (image-set chunks, query chunks).

    `map` calls `fn` on every item and yields `(item, result)` pairs as they finish, in any order; the
    core stores each result as it arrives, so a distributed executor keeps the run resumable.
    """

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[Any, Any]]: ...


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor a plugin offers. `factory(settings)` builds it from the `[executor]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], Executor]
    description: str
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------------------------------------
# The kinds of registration: one row each
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of thing plugins register. Everything that differs between kinds is a field of its row in
    `KINDS`; the loader, the listing, the docs generator and the audit-file tables read it from there.

    `name` is the kind as `PluginSet.get`, `trainprove plugins --json` and error messages spell it; `hook`
    the registry hook that returns its specs; `spec` their record type; `table` the audit-file table that
    selects one by its `use_key` (`many`: an array of tables, `[[suspect]]`); `title` and `singular` name
    it in listings and docs.
    """

    name: str
    hook: str
    spec: type
    table: str
    title: str
    singular: str
    use_key: str = "use"
    many: bool = False

    @property
    def plural(self) -> str:
        return self.title.lower()

    @property
    def selector(self) -> str:
        """The table as an audit file writes it: `[generator]`, `[[suspect]]`."""
        return f"[[{self.table}]]" if self.many else f"[{self.table}]"


KindName = Literal["generator", "suspect", "shadow-trainer", "test", "executor"]

KINDS: tuple[Kind, ...] = (
    Kind("generator", "trainprove_generators", GeneratorSpec, "generator", "Generators", "generator"),
    Kind(
        "suspect",
        "trainprove_suspect_adapters",
        SuspectAdapterSpec,
        "suspect",
        "Suspect adapters",
        "suspect adapter",
        many=True,
    ),
    Kind(
        "shadow-trainer",
        "trainprove_shadow_trainers",
        ShadowTrainerSpec,
        "shadow",
        "Shadow trainers",
        "shadow trainer",
        use_key="trainer",
    ),
    Kind(
        "test",
        "trainprove_decision_tests",
        DecisionTestSpec,
        "test",
        "Decision tests",
        "decision test",
        many=True,
    ),
    Kind("executor", "trainprove_executors", ExecutorSpec, "executor", "Executors", "executor"),
)
"""Every kind of registration, in the order listings show them."""

KIND: dict[str, Kind] = {k.name: k for k in KINDS}
"""`KINDS` by name."""
