"""The seam for distributed engines: work items, model references, outcomes, executors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .options import Option

if TYPE_CHECKING:
    from ..task import Task

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
        from ..store import content_key

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
    models trained at once): True or False for every kind of work, or a frozenset of the kinds it runs at
    once (the `processes` executor's default, `{"generate", "train"}`, runs queries in the driver, on its
    threads); the local executor says False.
    """

    parallel: bool | frozenset[str]

    def run(self, works: Sequence[Work]) -> Iterator[tuple[Work, Outcome]]: ...

    def close(self) -> None: ...


def runs_at_once(executor: Executor, kind: str) -> bool:
    """Whether `executor` runs independent artifacts of this kind of work at once (its `parallel`)."""
    parallel = executor.parallel
    return parallel if isinstance(parallel, bool) else kind in parallel


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
