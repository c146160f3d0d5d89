"""The typed records that plugins hand to the core, and the small protocols their objects follow.

Registry hooks return *specs* (frozen dataclasses with a name, a factory, a one-line description and the
audit-file keys the plugin owns). Factories build the working objects (a `Generator`, a `SuspectAdapter`, a
`ShadowTrainer`, a `DecisionTest`) from the plugin's validated settings. `KINDS` has one row per kind of
registration (its hook, spec type, audit-file table and titles); everything else derives from it. Nothing
here imports numpy at module level, so the CLI stays fast to start.

Every spec may carry `validate(settings)`, for what one option's bounds or `check` cannot say (a name that
must exist in the plugin's library, a URL, a device, two keys that must agree). The core calls it while the
audit file is loaded, after every key of the table passed its type, bounds and `check`, with the plugin's
settings (defaults filled in), before any work. It raises `ValueError` (or a `TrainproveError`; a
`ConfigError(..., key=NAME)` names the key) with a sentence for the user, and the core prefixes the file
and the table. It must be cheap: it may import the plugin's library to look a name up, but must not
download, load a model or reach the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

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
    unbounded; an `int` option without `min` must not be negative), and `exclusive_min` excludes `min`
    itself (a learning rate or a timeout above 0). A `float` (and every number of a `list[float]`) must be
    finite: NaN and infinities are refused. `secret` keeps the value out of reports, manifests and cache
    keys (use it for anything that names a credential): `True` makes the value itself a secret, `"env"`
    the value of the environment variable it names (an API token's `token_env`); either way
    `trainprove_core.secrets` redacts that secret from every message.

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
    secret: bool | Literal["env"] = False
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    check: Callable[[Any, Mapping[str, Any]], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise TypeError(
                f"option {self.name!r}: min and max apply to int and float options, not {self.type}"
            )
        if self.exclusive_min and self.min is None:
            raise ValueError(f"option {self.name!r}: exclusive_min needs a min")
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
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


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


@dataclass
class QueryUsage:
    """What asking a remote suspect cost, in images: `sent` counts every image of every request that went
    out (retries included), `paid` those of the requests the server answered (whether or not the answer
    was used: one that came too late was still paid for). An adapter that keeps one as `usage` has it
    reported as the suspect's `queries_sent` and `queries_paid`, whatever the outcome."""

    sent: int = 0
    paid: int = 0


@runtime_checkable
class SuspectAdapter(Protocol):
    """How to ask a suspect model.

    `label_names` is the suspect's label space in its own index order (None: it uses the task's order).
    `returns` says whether `predict` fills `probabilities`. `predict` takes uint8 RGB images (N, H, W, 3)
    at the task's size and returns `Answers` whose labels index `label_names` (or the task's classes);
    labels may also be returned as class-name strings (dtype object/str), which the core maps by name.
    `identity` keys the answer cache: it must change when the answers could change, and must never
    contain a credential. An adapter that holds resources (a connection pool) may define `close()`
    (`Closable`); the audit calls it when it is done with the suspect. An adapter that loads its model
    lazily (its attributes known without the weights) may define `load()` (`LoadsLazily`): the audit calls
    it before the first query,
    and up front (before any image is made) for each suspect whose answers are not all cached, so a model
    that cannot serve fails early; a suspect whose answers are all cached is never loaded.
    A remote adapter may keep a `QueryUsage` as `usage` (`Metered`: reported as what it sent and what was
    paid), and define `attach(folder)` (`Attaches`): the core calls it before
    the first query with a folder of the store that is this adapter's own (keyed by its identity), where
    it may keep what must outlive the run (counts against its budget, answers of a chunk that failed).
    It may also keep `remarks` (`Remarks`), sentences about this run's answers (how many were
    unparseable, say), reported as the suspect's `remarks`; the report counts every suspect's `unanswered`
    images itself.
    """

    identity: Mapping[str, Any]
    label_names: Sequence[str] | None
    returns: Literal["labels", "probabilities"]
    batch_size: int
    cost: QueryCost

    def predict(self, images: np.ndarray) -> Answers: ...


# The optional members of adapters, trainers' models and executors, each a protocol the core checks with
# `isinstance` (never a `getattr` probe): what a plugin may define, visible in one place.


@runtime_checkable
class Closable(Protocol):
    """Holds resources (a connection pool, a server it started, an executor's workers): `close()` releases
    them, and is safe to call twice. The core calls it when it is done with the object."""

    def close(self) -> None: ...


@runtime_checkable
class LoadsLazily(Protocol):
    """Knows its identity and label space without its weights: `load()` loads them (called once, before
    the first query, or up front to fail before any work)."""

    def load(self) -> None: ...


@runtime_checkable
class Attaches(Protocol):
    """Keeps what must outlive the run (counts against a budget, answers of a chunk that failed) in
    `folder`, a folder of the store that is this adapter's own: `attach(folder)` is called before the
    first query."""

    def attach(self, folder: Path) -> None: ...


@runtime_checkable
class Metered(Protocol):
    """Counts its own queries: `usage` (None: not counted) is reported as what it sent and what was paid."""

    usage: QueryUsage | None


@runtime_checkable
class Remarks(Protocol):
    """Has sentences about this run's answers (how many were unparseable, say), reported as the suspect's
    `remarks`."""

    remarks: Sequence[str] | None


@dataclass(frozen=True)
class SuspectAdapterSpec:
    """A suspect adapter a plugin offers. `factory(settings, task)` builds it from a `[[suspect]]` table."""

    name: str
    factory: Callable[[Mapping[str, Any], Task], SuspectAdapter]
    description: str
    options: tuple[Option, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


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
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


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
    on every round, so an audit that has one asks the whole set.
    """

    needs: Literal["labels", "probabilities"]

    def decide(self, evidence: Evidence) -> Verdict: ...


@runtime_checkable
class Sequential(Protocol):
    """A decision test that declares `sequential = True`: judged after every round of a sequential audit."""

    sequential: bool


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


# --------------------------------------------------------------------------------------------------------
# Executors (the seam for distributed engines)
# --------------------------------------------------------------------------------------------------------


WorkKind = Literal["generate", "train", "query"]
WORK_KINDS: tuple[str, ...] = ("generate", "train", "query")


@dataclass(frozen=True)
class ModelRef:
    """What a worker needs to build a model itself, once per worker: the plugin's `kind` ("generator",
    "suspect", "shadow-trainer", or "trained" for a model a trainer wrote to `model_dir`), its name `use`,
    its validated `settings`, and the registration's `factory` (pickled by reference: a module-level
    function of an installed plugin). A suspect adapter and a trained model are built for `task`.

    `key` names the model (a content hash of everything above but the factory): an executor keeps one
    built model per key and worker. `obj` is set instead for an object the core did not build from a
    table (a generator a caller made by hand): then that object itself travels to the worker, pickled.
    Settings may hold secrets (a suspect's token): they travel to the worker, never into a log or key
    that is shown.
    """

    kind: str
    use: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    factory: Callable[..., Any] | None = field(default=None, compare=False)
    task: Task | None = None
    model_dir: str | None = None
    obj: Any = field(default=None, compare=False)
    ledger: str | None = None
    """A suspect's own folder of the store (`SuspectAdapter.attach`): a worker that builds the suspect
    attaches it there too, so what it sends counts against the budget over every run and process."""

    @property
    def key(self) -> str:
        from .store import content_key

        if self.obj is not None:
            return f"object-{id(self.obj):x}"
        task = None if self.task is None else [list(self.task.classes), self.task.image_size]
        return content_key(
            {
                "kind": self.kind,
                "use": self.use,
                "settings": dict(self.settings),
                "task": task,
                "model_dir": self.model_dir,
                **({"ledger": self.ledger} if self.ledger is not None else {}),
            }
        )

    def build(self) -> Any:
        """Build the model on this process (a worker calls it once per `key`)."""
        if self.obj is not None:
            return self.obj
        if self.factory is None:
            raise TypeError(f"{self.kind} {self.use!r}: no factory to build it with")
        if self.kind == "suspect":
            adapter = self.factory(self.settings, self.task)
            attach = getattr(adapter, "attach", None)
            if self.ledger is not None and callable(attach):
                from pathlib import Path

                attach(Path(self.ledger))
            return adapter
        built = self.factory(self.settings)
        if self.kind == "trained":
            from pathlib import Path

            return built.open(Path(self.model_dir), self.task)
        return built

    def __repr__(self) -> str:  # never the settings: they may hold a credential
        where = f", model_dir={self.model_dir!r}" if self.model_dir else ""
        return f"ModelRef({self.kind} {self.use!r}, key={self.key}{where})"


@dataclass
class Work:
    """One independent chunk of work an executor runs: what it is (`kind`), the model it needs (`model`,
    built on the worker from its `ModelRef`), and its `inputs`:

    - "generate": `(requests, image_size)`, a list of `GenerationRequest` and the task's image size; the
      result is `{"images": uint8 (N, S, S, 3), "labels": int64 (N,)}`;
    - "query": `images`, uint8 (N, S, S, 3); the result is the model's raw `Answers` (in its own label
      space: the core maps them to the task's on the driver);
    - "train": `(images, labels, task, out_dir)`; in the driver's process the trainer writes into
      `out_dir` and the result is None; anywhere else it writes to a folder of its own and the result is
      that folder's files, `{relative path: bytes}`, which the core writes into the store.

    `size` is the number of images in the chunk, `index` its place in its artifact, `label` what the core
    calls the artifact ("query suspect-a"), `remote` whether a query goes to a remote API (an executor
    limits how many run at once per model). `local` is the driver's own built model: the local executor
    uses it as it is; it never travels (a pickled `Work` drops it, and `in_driver` becomes False).
    """

    kind: WorkKind
    model: ModelRef
    inputs: Any
    size: int
    index: int = 0
    label: str = ""
    remote: bool = False
    local: Any = field(default=None, repr=False, compare=False)
    in_driver: bool = field(default=True, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["local"] = None
        state["in_driver"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass
class Outcome:
    """What running one `Work` gave: its `value` (see `Work`) and what it cost, accounted on the driver:
    `images` generated, `queries` sent to the model, `seconds` of work (model build excluded), the
    `worker` that ran it (a host:pid) and `built` whether that worker built the model for it (a cold
    start)."""

    value: Any
    images: int = 0
    queries: int = 0
    seconds: float = 0.0
    worker: str = ""
    built: bool = False


@runtime_checkable
class Executor(Protocol):
    """Runs independent chunks of work (`Work`: image-set chunks, trainings, query chunks).

    `run(works)` runs every item and yields `(work, outcome)` pairs as they finish, in any order, the
    `work` being the very object it was given; each `outcome` is what `trainprove_core.executors.execute`
    returns for it (run it on the worker). The core writes each result to the store as it arrives, so a
    killed run resumes whichever executor made what. An error of one item is raised from the iterator as
    the exception `execute` raised (not wrapped); the core stops iterating and closes the iterator, which
    should cancel what is still running. `close()` releases everything (workers, a cluster it started);
    the core calls it once when the audit ends, on errors and Ctrl-C too. `parallel` says whether `run`
    may be called from several threads at once for independent artifacts (suspects queried concurrently,
    models trained at once); the local executor says False.
    """

    parallel: bool

    def run(self, works: Sequence[Work]) -> Iterator[tuple[Work, Outcome]]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor a plugin offers. `factory(settings)` builds it from the `[executor]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], Executor]
    description: str
    options: tuple[Option, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


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
