"""The bottom of the engine: work items run by the executor, stored as they arrive, and accounted.

A `Jobs` holds the task, the plugins, the store, the executor and the accounts. It knows how a worker gets
a model (`remember` / `model_ref`), how one chunked artifact is made (`Job`: only its missing chunks run,
each written to the store on the driver as it arrives) and what the executor did (`WorkDone`). Image sets,
models and answers (the layers above) are all made through `run_jobs`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import progress, threads
from ..accounting import Accounts
from ..config import AuditConfig, run_checks, validate_table
from ..errors import InputError, TrainproveError
from ..plugins import PluginSet
from ..records import Closable, Executor, ModelRef, Outcome, Work, runs_at_once
from ..store import Store
from ..task import Task


@dataclass
class Job:
    """One chunked artifact to make through the executor: its store kind and identity, its work items
    (one per chunk, `Work.index` its chunk), and how a chunk's outcome becomes the arrays stored."""

    kind: str
    identity: Mapping[str, Any]
    works: list[Work]
    finish: Callable[[Work, Outcome], dict[str, np.ndarray]]
    paid: bool = False  # answers that cost queries: a damaged entry is not asked again unasked (Store)


@dataclass
class WorkDone:
    """What the executor did for this workspace, accounted on the driver from each `Outcome`: items run,
    images generated, queries sent, models trained, seconds of work, and cold starts (a worker building
    a model)."""

    items: int = 0
    images: int = 0
    queries: int = 0
    models: int = 0
    seconds: float = 0.0
    cold_starts: int = 0
    workers: set[str] = field(default_factory=set)

    def add(self, work: Work, outcome: Outcome) -> None:
        self.items += 1
        self.images += outcome.images
        self.queries += outcome.queries
        self.models += work.kind == "train"
        self.seconds += outcome.seconds
        self.cold_starts += bool(outcome.built)
        if outcome.worker:
            self.workers.add(outcome.worker)


def open_executor(plugins: PluginSet, use: str, settings: Mapping[str, Any] | None = None) -> Executor:
    """The executor `use` built from its `[executor]` keys `settings` (validated as an audit file's)."""
    registered = plugins.executor(use)
    options = registered.spec.options
    validated = validate_table(dict(settings or {}), options, source="<workspace>", where="executor")
    run_checks(validated, options, source="<workspace>", where="executor")
    return registered.spec.factory(validated)


def audit_executor(config: AuditConfig, plugins: PluginSet) -> Executor:
    """The executor an audit file's `[executor]` table names, built from its (validated) keys."""
    try:
        return plugins.executor(config.executor.use).spec.factory(config.executor.settings)
    except TrainproveError as exc:
        raise InputError(f"{config.source}: [executor] {exc}") from None


def raise_error(result: Any) -> Any:
    """`result`, or raise it when it is an error (what `run_jobs` gives in a failed job's place)."""
    if isinstance(result, BaseException):
        raise result
    return result


class Jobs:
    """Work through the executor into the store, accounted (the base of `Workspace`)."""

    def __init__(
        self, task: Task, plugins: PluginSet, store: Store, executor: Executor, show_progress: bool = True
    ):
        self.task = task
        self.plugins = plugins
        self.store = store
        self.executor = executor
        self.show_progress = show_progress
        self.queries_sent: dict[str, int] = {}
        self.observer_errors: list[str] = []
        self.work_done = WorkDone()
        self.accounts = Accounts()  # phase times and counts of work done and taken from the store
        self._refs: dict[int, tuple[Any, ModelRef]] = {}  # id(model) -> (model, how a worker builds it)
        self._lock = threading.Lock()
        threads.fixed()  # a bad $TRAINPROVE_THREADS stops here, before any work
        threads.forget()  # this workspace's accounting notes the threads its own work ran on

    def close(self) -> None:
        """Release the executor (its workers, a cluster it started). Safe to call twice."""
        self.executor.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def observe(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook with every observer isolated (`PluginSet.observe`): one that raises is
        recorded in `observer_errors` (and the report's `errors`) and the audit goes on."""
        self.observer_errors += self.plugins.observe(hook, **kwargs)

    # ---- how a worker gets a model ----------------------------------------------------------------------

    def remember(self, model: Any, ref: ModelRef) -> Any:
        """Note how a worker builds `model` (its `ModelRef`), for the work items that need it; returns it."""
        with self._lock:
            self._refs[id(model)] = (model, ref)
        return model

    def model_ref(self, model: Any) -> ModelRef:
        """How a worker gets `model`: the `ModelRef` it was built from, or, for an object the workspace
        did not build, the object itself (pickled to the worker)."""
        known = self._refs.get(id(model))
        if known is not None and known[0] is model:
            return known[1]
        return ModelRef("object", type(model).__name__, obj=model)

    # ---- running work -----------------------------------------------------------------------------------

    def _account(self, work: Work, outcome: Outcome, name: str | None = None) -> None:
        with self._lock:
            self.work_done.add(work, outcome)
            if name is not None:
                self.queries_sent[name] = self.queries_sent.get(name, 0) + outcome.queries
                self.accounts.add("queries_sent", outcome.queries)

    def _count(self, what: str, kind: str, identity: Mapping[str, Any], chunks: Sequence[Any]) -> None:
        """Count the items of an artifact the store holds (`{what}_cached`) and those to make now."""
        total = sum(len(c) for c in chunks)
        if self.store.has(kind, identity):
            cached = total
        else:
            cached = sum(len(chunks[i]) for i in self.store.cached_chunks(kind, identity, len(chunks)))
        self.accounts.add(f"{what}_cached", cached)
        if what == "images":
            self.accounts.add("images_made", total - cached)

    def run_jobs(self, jobs: Sequence[Job], desc: str) -> list[dict[str, np.ndarray] | TrainproveError]:
        """Each job's arrays through `Store.chunked` (only its missing chunks run), with one progress step
        over all pending chunks (each job is a step of the plan; a cached one counts as done). Jobs run at
        once, in threads, when the executor is `parallel`. A job that fails with a `TrainproveError` gives
        that error in its place; the others complete."""
        pending = []
        for job in jobs:
            if self.store.has(job.kind, job.identity):
                continue
            cached = set(self.store.cached_chunks(job.kind, job.identity, len(job.works)))
            pending += [w for w in job.works if w.index not in cached]
        for _ in range(len(jobs) - (1 if pending else 0)):
            progress.skip(progress.kind_of(desc))
        if not pending:
            return [self._one_job(job, None) for job in jobs]
        total = sum(w.size for w in pending)
        with progress.step(desc, total=total, unit="img", enabled=self.show_progress) as bar:
            if len(jobs) > 1 and runs_at_once(self.executor, pending[0].kind):
                with ThreadPoolExecutor(len(jobs), thread_name_prefix="trainprove-job") as pool:
                    return list(pool.map(lambda job: self._one_job(job, bar), jobs))
            return [self._one_job(job, bar) for job in jobs]

    def _one_job(self, job: Job, bar: progress.Bar | None) -> dict[str, np.ndarray] | TrainproveError:
        def run(indices: Sequence[int]):
            todo = [job.works[i] for i in indices]
            results = self.executor.run(todo)
            try:
                for work, outcome in results:
                    arrays = job.finish(work, outcome)
                    if bar is not None:
                        bar.update(work.size)
                    yield work.index, arrays
            finally:
                if isinstance(results, Closable):
                    results.close()  # an error or Ctrl-C: the executor cancels what still runs

        try:
            return self.store.chunked(job.kind, job.identity, job.works, run, paid=job.paid)
        except TrainproveError as exc:
            return exc
        finally:
            self.accounts.note_threads()
