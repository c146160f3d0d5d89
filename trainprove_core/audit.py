"""One audit, start to finish.

    audit file ─▶ plugins ─▶ shadow set (generator, shadow prompt) ─▶ shadow model (trainer)
                          └▶ validation set (generator, validation prompt)
               for each suspect: its answers on the validation set (cached per chunk)
               for each decision test and suspect: evidence ─▶ verdict
               ─▶ report.json + report.html

Everything expensive goes through the `Workspace`, which keys it in the content-addressed store: a second
run with one more suspect only queries that suspect, and a killed run resumes from its last saved chunk.
"""

from __future__ import annotations

import inspect
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from dataclasses import replace as dataclass_replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, identity_cache, progress, rounds, secrets
from .accounting import Accounts, phase
from .config import (
    AuditConfig,
    ImageSetConfig,
    PluginTable,
    _run_checks,
    check_disk,
    check_plugin_settings,
    table_error,
    validate_table,
)
from .errors import BudgetExceeded, InputError, TrainproveError
from .evidence import declined
from .executors import write_files
from .plugins import PluginSet
from .records import (
    Answers,
    DecisionTest,
    Evidence,
    Executor,
    GenerationRequest,
    Generator,
    ImageSet,
    ModelRef,
    Outcome,
    SuspectAdapter,
    Verdict,
    Work,
)
from .rounds import Look
from .store import Store, content_key, derive_seed
from .task import Task

NOT_ANSWERED = -1
"""The label of an image a model did not answer (in `Answers.labels`)."""


def resize_to_task(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize (as the paper) of uint8 RGB images to size x size."""
    from PIL import Image

    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(
            f"a generator returned images of shape {images.shape} and dtype {images.dtype}; "
            "expected uint8 RGB of shape (N, H, W, 3)"
        )
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return out


def preview_sheet(image_set: ImageSet, task: Task, path: Path, per_class: int = 8) -> None:
    """A PNG with `per_class` images of each class in a row, the class name on the left, a gap between
    images (enlarged so small images stay visible)."""
    from PIL import Image, ImageDraw

    scale = max(1, 64 // task.image_size)
    cell, gap = task.image_size * scale, 4
    label_width = 8 + 7 * max(len(c) for c in task.classes)
    width = label_width + per_class * (cell + gap) + gap
    height = task.num_classes * (cell + gap) + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(task.classes):
        top = gap + c * (cell + gap)
        draw.text((4, top + cell // 2 - 5), name, fill="black")
        for j, i in enumerate(np.flatnonzero(image_set.labels == c)[:per_class]):
            tile = Image.fromarray(image_set.images[i]).resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (label_width + gap + j * (cell + gap), top))
    sheet.save(path)


def image_requests(task: Task, cfg: ImageSetConfig) -> list[GenerationRequest]:
    """The requests of an image set, class by class in the task's order, `cfg.per_class` each: image j of a
    class is prompted with `cfg.prompt` for that class and seeded by (set seed, that prompt, j) only, so a
    set resumes and regrows identically, and every command that makes a set (an audit, `trainprove sample`)
    makes the same images from the same settings."""
    return [
        GenerationRequest(prompt, ci, name, derive_seed(cfg.seed, prompt, j))
        for ci, name in enumerate(task.classes)
        for prompt in [cfg.prompt.format(label=name)]
        for j in range(cfg.per_class)
    ]


def validation_batches(n_images: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The paper's partition of the validation set into n = ceil(N / batch_size) query batches.

    Images are shuffled with the set's seed so every batch mixes classes, and split into n batches of
    near-equal size (5,000 images at 128 give the paper's n = 40, of 125 each), so no batch is a tiny
    remainder whose accuracy would inflate the shadow's spread.
    """
    n = max(1, math.ceil(n_images / batch_size))
    order = np.random.default_rng(seed).permutation(n_images)
    return [np.sort(b) for b in np.array_split(order, n)]


@dataclass
class _Job:
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


class Workspace:
    """The cached building blocks of audits: image sets, shadow models, answers.

    Decision tests reach it as `Evidence.run.workspace` to ask for more (image sets from other generators,
    reference models), cached like the audit's own. Everything expensive is cut into `Work` items that
    name the model they need (a `ModelRef`: the plugin and its settings, so a worker builds the model
    itself) and run by the workspace's executor; each result is written to the store here, on the driver,
    as it arrives, and its counts (queries, images, seconds) are added up here too (`queries_sent`,
    `work_done`). A workspace is a context manager: leaving it closes the executor.
    """

    def __init__(
        self, task: Task, plugins: PluginSet, store: Store, executor: Any, show_progress: bool = True
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
        self._loaded: set[int] = set()  # the adapters `load` has loaded (by id)
        self._generators: dict[str, Generator] = {}
        self._refs: dict[int, tuple[Any, ModelRef]] = {}  # id(model) -> (model, how a worker builds it)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        task: Task,
        plugins: PluginSet,
        store: Store,
        show_progress: bool = True,
        executor: str = "local",
        executor_settings: Mapping[str, Any] | None = None,
    ) -> Workspace:
        """A workspace outside any audit (building a pool of suspects, a benchmark), with the named
        executor and its `[executor]` keys. An audit's own comes from `AuditRun`. Close it when done (or
        use it in a `with` block)."""
        return cls(task, plugins, store, open_executor(plugins, executor, executor_settings), show_progress)

    def close(self) -> None:
        """Release the executor (its workers, a cluster it started). Safe to call twice."""
        close = getattr(self.executor, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- building plugins -------------------------------------------------------------------------------

    def plugin_table(self, kind: str, use: str, settings: Mapping[str, Any], where: str = "") -> PluginTable:
        """Validate `settings` for the plugin `use` of `kind` (as if written in an audit file)."""
        registered = self.plugins.get(kind, use)
        validated = validate_table(
            settings,
            registered.spec.options,
            source=where or "<workspace>",
            where=kind,
            owner=f"{kind} {use!r}",
        )
        check_plugin_settings(registered, validated, source=where or "<workspace>", where=kind)
        return PluginTable(use, validated, dict(validated), registered.distribution, registered.version)

    def generator(self, table: PluginTable) -> Generator:
        """The generator a table selects (built once per audit)."""
        key = content_key({"use": table.use, "settings": table.settings})
        if key not in self._generators:
            spec = self.plugins.get("generator", table.use).spec
            ref = ModelRef("generator", table.use, dict(table.settings), spec.factory)
            self._generators[key] = self.remember(spec.factory(table.settings), ref)
        return self._generators[key]

    def suspect_adapter(self, table: PluginTable) -> SuspectAdapter:
        """The suspect adapter a `[[suspect]]` table selects, built for the task (a worker builds its own
        from the same table)."""
        spec = self.plugins.get("suspect", table.use).spec
        ref = ModelRef("suspect", table.use, dict(table.settings), spec.factory, self.task)
        return self.remember(spec.factory(table.settings, self.task), ref)

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

    def _run_jobs(self, jobs: Sequence[_Job], desc: str) -> list[dict[str, np.ndarray] | TrainproveError]:
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
            progress.skip()
        if not pending:
            return [self._one_job(job, None) for job in jobs]
        total = sum(w.size for w in pending)
        with progress.step(desc, total=total, unit="img", enabled=self.show_progress) as bar:
            if len(jobs) > 1 and getattr(self.executor, "parallel", False):
                with ThreadPoolExecutor(len(jobs), thread_name_prefix="trainprove-job") as pool:
                    return list(pool.map(lambda job: self._one_job(job, bar), jobs))
            return [self._one_job(job, bar) for job in jobs]

    def _one_job(self, job: _Job, bar: progress.Bar | None) -> dict[str, np.ndarray] | TrainproveError:
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
                close = getattr(results, "close", None)
                if callable(close):
                    close()  # an error or Ctrl-C: the executor cancels what still runs

        try:
            return self.store.chunked(job.kind, job.identity, job.works, run, paid=job.paid)
        except TrainproveError as exc:
            return exc

    @staticmethod
    def _raise(result: Any) -> Any:
        if isinstance(result, BaseException):
            raise result
        return result

    # ---- image sets -------------------------------------------------------------------------------------

    def image_set_identity(self, generator: Generator, cfg: ImageSetConfig) -> dict[str, Any]:
        """What keys the image set `image_set(role, generator, cfg)` returns (known before it is made)."""
        return {
            "kind": "image-set",
            "generator": dict(generator.identity),
            "prompt": cfg.prompt,
            "per_class": cfg.per_class,
            "seed": cfg.seed,
            "classes": list(self.task.classes),
            "image_size": self.task.image_size,
            "resize": "bilinear",
        }

    @phase("generation")
    def image_set(self, role: str, generator: Generator, cfg: ImageSetConfig) -> ImageSet:
        """`cfg.per_class` images of every class from `generator`, prompted with `cfg.prompt`."""
        requests = image_requests(self.task, cfg)
        identity = self.image_set_identity(generator, cfg)
        size = max(1, int(generator.batch_size))
        ref = self.model_ref(generator)
        desc = f"generate {role} set"
        works = [
            Work(
                "generate",
                ref,
                (requests[i : i + size], self.task.image_size),
                len(requests[i : i + size]),
                index,
                desc,
                local=generator,
            )
            for index, i in enumerate(range(0, len(requests), size))
        ]
        self._count("images", "image-sets", identity, [w.inputs[0] for w in works])

        def finish(work: Work, outcome: Outcome) -> dict[str, np.ndarray]:
            self._account(work, outcome)
            return outcome.value

        arrays = self._raise(self._run_jobs([_Job("image-sets", identity, works, finish)], desc)[0])
        image_set = ImageSet(role, content_key(identity), arrays["images"], arrays["labels"], identity)
        self.observe("trainprove_after_generate", role=role, image_set=image_set)
        return image_set

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

    def observe(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook with every observer isolated (`PluginSet.observe`): one that raises is
        recorded in `observer_errors` (and the report's `errors`) and the audit goes on."""
        self.observer_errors += self.plugins.observe(hook, **kwargs)

    # ---- shadow models ----------------------------------------------------------------------------------

    def trained_model(self, table: PluginTable, image_set: ImageSet) -> tuple[Path, Any, str]:
        """The directory of a model trained on `image_set` by the trainer `table` selects (trained now
        unless the store has it), the trainer, and the model's key."""
        return self._raise(self.trained_models([(table, image_set)])[0])

    @phase("training")
    def trained_models(
        self, pairs: Sequence[tuple[PluginTable, ImageSet]]
    ) -> list[tuple[Path, Any, str] | TrainproveError]:
        """`trained_model` for several (trainer table, image set) pairs, trained at once where the executor
        runs work in parallel; a training that fails gives its `TrainproveError` in its place."""
        jobs, out = [], []
        for table, image_set in pairs:
            spec = self.plugins.get("shadow-trainer", table.use).spec
            trainer = self.remember(
                spec.factory(table.settings),
                ModelRef("shadow-trainer", table.use, dict(table.settings), spec.factory),
            )
            identity = {
                "kind": "model",
                "trainer": dict(trainer.identity),
                "image_set": image_set.key,
                "classes": list(self.task.classes),
            }
            jobs.append((trainer, identity, image_set))
        pending = [j for j in jobs if self.store.finished("models", j[1]) is None]  # missing or damaged
        for _ in range(len(jobs) - len(pending)):
            progress.skip()
        self.accounts.add("models_cached", len(jobs) - len(pending))
        self.accounts.add("models_trained", len(pending))

        def train(job: tuple[Any, Mapping[str, Any], ImageSet], bar: Any) -> Path | TrainproveError:
            trainer, identity, image_set = job

            def build(tmp: Path) -> None:
                # A trainer that takes `checkpoint_dir` gets a folder that survives a killed run, to resume
                # from (docs/hooks.md); the store removes it once the model is committed.
                resumable = "checkpoint_dir" in inspect.signature(trainer.train).parameters
                checkpoints = str(self.store.checkpoints("models", identity)) if resumable else None
                inputs = (image_set.images, image_set.labels, self.task, str(tmp), checkpoints)
                work = Work(
                    "train",
                    self.model_ref(trainer),
                    inputs,
                    len(image_set),
                    0,
                    f"train model on {image_set.role} set",
                    local=trainer,
                )
                for done, outcome in self.executor.run([work]):
                    if outcome.value is not None:
                        write_files(outcome.value, tmp)
                    self._account(done, outcome)

            try:
                return self.store.directory("models", identity, build)
            except TrainproveError as exc:
                return exc

        parallel = len(pending) > 1 and getattr(self.executor, "parallel", False)
        if parallel:
            with progress.step(f"train {len(pending)} models", enabled=self.show_progress) as bar:
                for _ in range(len(pending) - 1):
                    progress.skip()
                with ThreadPoolExecutor(len(pending), thread_name_prefix="trainprove-train") as pool:
                    made = pool.map(lambda j: train(j, bar), pending)
                    dirs = dict(zip((id(j) for j in pending), made, strict=True))
        else:
            dirs = {}
            for job in pending:
                with progress.step(f"train model on {job[2].role} set", enabled=self.show_progress):
                    dirs[id(job)] = train(job, None)
        for job in jobs:
            trainer, identity, _ = job
            where = dirs.get(id(job), self.store.location("models", identity))
            out.append(
                where if isinstance(where, TrainproveError) else (where, trainer, content_key(identity))
            )
        return out

    def open_model(self, table: PluginTable, model_dir: Path, trainer: Any) -> SuspectAdapter:
        """A trained model opened for queries by its trainer (a worker opens its own from the same
        directory)."""
        spec = self.plugins.get("shadow-trainer", table.use).spec
        ref = ModelRef("trained", table.use, dict(table.settings), spec.factory, self.task, str(model_dir))
        return self.remember(trainer.open(model_dir, self.task), ref)

    def shadow_model(self, table: PluginTable, shadow_set: ImageSet) -> tuple[SuspectAdapter, str]:
        """The shadow model trained on `shadow_set` by the trainer `table` selects, opened for queries."""
        return self.shadow_models([(table, shadow_set)])[0]

    def shadow_models(
        self, pairs: Sequence[tuple[PluginTable, ImageSet]]
    ) -> list[tuple[SuspectAdapter, str]]:
        """`shadow_model` for several (trainer table, image set) pairs, trained at once where the executor
        runs work in parallel (a decision test's reference models); raises the first training's error."""
        made = [self._raise(m) for m in self.trained_models(pairs)]
        with identity_cache.using(self.store.root / identity_cache.KIND):
            return [
                (self.open_model(table, d, trainer), key)
                for (table, _), (d, trainer, key) in zip(pairs, made, strict=True)
            ]

    # ---- answers ----------------------------------------------------------------------------------------

    @staticmethod
    def answers_identity(adapter: SuspectAdapter, image_set_key: str) -> dict[str, Any]:
        """What keys `adapter`'s answers on the image set of key `image_set_key`."""
        return {
            "kind": "answers",
            "model": dict(adapter.identity),
            "image_set": image_set_key,
            "label_names": list(adapter.label_names) if adapter.label_names is not None else None,
        }

    def has_answers(self, adapter: SuspectAdapter, image_set_key: str) -> bool:
        """Whether the store holds all of `adapter`'s answers on the image set of key `image_set_key`."""
        return self.store.has("answers", self.answers_identity(adapter, image_set_key))

    @phase("model_loading")
    def load(self, adapter: SuspectAdapter) -> None:
        """Load an adapter that loads lazily (one with a `load()`), once: before its first query, or up
        front to fail before any work. One whose answers are all in the store is never loaded."""
        load = getattr(adapter, "load", None)
        if callable(load) and id(adapter) not in self._loaded:
            load()
            self._loaded.add(id(adapter))
            self.accounts.add("models_loaded")

    def answers(self, name: str, adapter: SuspectAdapter, image_set: ImageSet) -> tuple[Answers, str]:
        """`adapter`'s answers on `image_set`, in the task's label space; cached per chunk, budget-checked."""
        return self.answers_all([(name, adapter, image_set)])[0]

    def answers_all(self, asks: Sequence[tuple[str, SuspectAdapter, ImageSet]]) -> list[tuple[Answers, str]]:
        """`answers` for several (name, adapter, image set), queried at once where the executor runs work
        in parallel (a decision test's reference models); raises the first model's error."""
        return [self._raise(result) for result in self.answers_many(asks)]

    @phase("queries")
    def answers_many(
        self, asks: Sequence[tuple[str, SuspectAdapter, ImageSet]]
    ) -> list[tuple[Answers, str] | TrainproveError]:
        """`answers` for several (name, adapter, image set) at once: independent models are queried
        concurrently where the executor runs work in parallel. A model whose queries fail (bad label
        space, budget, a dead endpoint) gives its `TrainproveError` in its place; the others complete."""
        if not asks:
            return []
        jobs: list[_Job | TrainproveError] = []
        for name, adapter, image_set in asks:
            try:
                jobs.append(self._answer_job(name, adapter, image_set))
            except TrainproveError as exc:
                jobs.append(exc)
            self.queries_sent.setdefault(name, 0)
        runnable = [j for j in jobs if isinstance(j, _Job)]
        desc = f"query {asks[0][0]}" if len(asks) == 1 else f"query {len(asks)} models"
        results = iter(self._run_jobs(runnable, desc))
        out: list[tuple[Answers, str] | TrainproveError] = []
        for (name, _, _), job in zip(asks, jobs, strict=True):
            if not isinstance(job, _Job):
                out.append(job)
                continue
            arrays = next(results)
            if isinstance(arrays, TrainproveError):
                out.append(arrays)
                continue
            answers = Answers(arrays["labels"], arrays.get("probabilities"))
            self.observe(
                "trainprove_after_query", suspect=name, answers=answers, queries=self.queries_sent[name]
            )
            out.append((answers, content_key(job.identity)))
        return out

    def _answer_job(self, name: str, adapter: SuspectAdapter, image_set: ImageSet) -> _Job:
        label_map = self._label_map(name, adapter)
        identity = self.answers_identity(adapter, image_set.key)
        size = max(1, int(adapter.batch_size))
        chunks = [np.arange(i, min(i + size, len(image_set))) for i in range(0, len(image_set), size)]
        self._count("answers", "answers", identity, chunks)
        if not self.store.has("answers", identity):
            self._check_budget(name, adapter, identity, chunks)
            self.load(adapter)
            attach = getattr(adapter, "attach", None)
            if callable(attach):  # the adapter's own folder of the store (`SuspectAdapter`)
                attach(self.store.root / "ledgers" / content_key(dict(adapter.identity)))
        ref, remote = self.model_ref(adapter), bool(adapter.cost.remote)
        if ref.kind == "suspect" and callable(getattr(adapter, "attach", None)):  # a worker attaches it too
            ledger = self.store.root / "ledgers" / content_key(dict(adapter.identity))
            ref = dataclass_replace(ref, ledger=str(ledger))
        works = [
            Work("query", ref, image_set.images[idx], len(idx), i, f"query {name}", remote, local=adapter)
            for i, idx in enumerate(chunks)
        ]

        def finish(work: Work, outcome: Outcome) -> dict[str, np.ndarray]:
            self._account(work, outcome, name)
            return self._to_task_space(name, adapter, outcome.value, work.size, label_map)

        paid = bool(adapter.cost.remote or adapter.cost.budget is not None)  # damaged: not re-asked
        return _Job("answers", identity, works, finish, paid)

    def _label_map(self, name: str, adapter: SuspectAdapter) -> np.ndarray | None:
        if adapter.label_names is None:
            return None
        try:
            return np.array(self.task.label_map(list(adapter.label_names)), dtype=np.int64)
        except ValueError as exc:
            raise InputError(
                f"suspect {name!r}: {exc} (set `label_names` in its table to the model's class names in "
                "its output order, or map them to the task's [task] classes)"
            ) from None

    def _to_task_space(
        self,
        name: str,
        adapter: SuspectAdapter,
        answers: Answers,
        expected: int,
        label_map: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        labels = np.asarray(answers.labels)
        if len(labels) != expected:
            raise InputError(f"suspect {name!r} answered {len(labels)} labels for {expected} images")
        names = list(adapter.label_names) if adapter.label_names is not None else list(self.task.classes)
        if labels.dtype.kind in "OUS":
            missing = {None, NOT_ANSWERED, str(NOT_ANSWERED)}  # class names, or "not answered"
            unknown = sorted({str(v) for v in labels if v not in names and v not in missing})
            if unknown:
                raise InputError(f"suspect {name!r} answered labels outside its label space: {unknown[:5]}")
            labels = np.array(
                [names.index(v) if v in names else NOT_ANSWERED for v in labels], dtype=np.int64
            )
        labels = labels.astype(np.int64)
        # -1 (NOT_ANSWERED) marks an image the model did not answer (a refused request); decision tests
        # compute over the answered images and abstain when too few were answered. Anything else outside
        # the label space is a fault of the adapter.
        bad = (labels < NOT_ANSWERED) | (labels >= len(names))
        if bad.any():
            raise InputError(
                f"suspect {name!r} answered label indices outside 0..{len(names) - 1} (or -1 for not "
                f"answered): {sorted(set(labels[bad].tolist()))[:5]}"
            )
        answered = labels >= 0
        mapped = labels.copy()
        if label_map is not None:
            mapped[answered] = label_map[labels[answered]]
        out = {"labels": mapped}
        if answers.probabilities is not None:
            probs = np.asarray(answers.probabilities, dtype=np.float32)
            if probs.shape != (expected, len(names)):
                raise InputError(
                    f"suspect {name!r} answered probabilities of shape {probs.shape}, "
                    f"expected ({expected}, {len(names)})"
                )
            if label_map is not None:
                reordered = np.empty_like(probs)
                reordered[:, label_map] = probs
                probs = reordered
            out["probabilities"] = probs
        return out

    def _check_budget(
        self, name: str, adapter: SuspectAdapter, identity: Mapping[str, Any], chunks: list[np.ndarray]
    ) -> None:
        budget = adapter.cost.budget
        if budget is None:
            return
        cached = set(self.store.cached_chunks("answers", identity, len(chunks)))
        spent = sum(len(c) for i, c in enumerate(chunks) if i in cached)
        needed = sum(len(c) for i, c in enumerate(chunks) if i not in cached)
        if spent + needed > budget:
            raise BudgetExceeded(
                f"suspect {name!r}: answering the validation set takes {spent + needed} queries but its "
                f"budget is {budget}; {spent} are already paid for (cached), {needed} more are needed. Raise "
                "`budget` for this suspect or lower [validation] per_class; nothing was sent."
            )


@dataclass
class AuditResult:
    report: dict[str, Any]
    out_dir: Path
    errors: list[str] = field(default_factory=list)
    observer_errors: list[str] = field(default_factory=list)


def _verdict_record(verdict: Verdict, truth: str | None, registered: Any) -> dict[str, Any]:
    record = {
        "suspect": verdict.suspect,
        "test": verdict.test,
        "decision": verdict.decision,
        "statistic": verdict.statistic,
        "threshold": verdict.threshold,
        "p_value": verdict.p_value,
        "alpha": verdict.alpha,
        "n": verdict.n,
        "effect_size": verdict.effect_size,
        "explanation": verdict.explanation,
        "truth": truth,
        "correct": None if truth is None or verdict.decision == "inconclusive" else verdict.decision == truth,
        "quantity": verdict.quantity,
        "sample": verdict.sample,
        "suspect_value": verdict.suspect_value,
        "boundary": verdict.boundary,
        "details": verdict.details,
        "plugin": registered.plugin,
        "distribution": registered.distribution,
        "version": registered.version,
    }
    # JSON has no infinity: a statistic of +inf (a perfect shadow) is written as null, its decision stands.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def open_executor(plugins: PluginSet, use: str, settings: Mapping[str, Any] | None = None) -> Executor:
    """The executor `use` built from its `[executor]` keys `settings` (validated as an audit file's)."""
    registered = plugins.get("executor", use)
    options = registered.spec.options
    validated = validate_table(dict(settings or {}), options, source="<workspace>", where="executor")
    _run_checks(validated, options, source="<workspace>", where="executor")
    return registered.spec.factory(validated)


def audit_executor(config: AuditConfig, plugins: PluginSet) -> Executor:
    """The executor an audit file's `[executor]` table names, built from its (validated) keys."""
    try:
        return plugins.get("executor", config.executor.use).spec.factory(config.executor.settings)
    except TrainproveError as exc:
        raise InputError(f"{config.source}: [executor] {exc}") from None


@dataclass
class Judged:
    """One suspect asked and judged: its `answers` to the validation images at `index` (all of them, or
    the rounds asked in a sequential audit), the answer sets' `keys`, every test's report record, and the
    last `look` asked (None in a fixed-design audit)."""

    answers: Answers
    index: np.ndarray
    keys: list[str]
    records: list[dict[str, Any]]
    look: Look | None


class AuditRun:
    """One audit as one typed object: its stages, each made once, from the store when it can be.

        generator ─▶ shadow_set ─▶ shadow_model ─▶ shadow_answers
                  └▶ validation ──────────────────┘      batches
        suspect_answers(name, adapter) ─▶ evidence(name, answers) ─▶ judge(evidence) ─▶ verdicts

    `trainprove audit`, `plan`, `generate`, the demo and the benchmarks build their audits with it, and a
    decision test that needs more (extra image sets, reference models) gets it as `Evidence.run` and asks
    its `workspace` for them, cached like the audit's own. Building it checks everything that can be
    checked without work: the executor, every decision test's settings, every suspect's checkpoint and
    label space (`open_suspects`), so bad input fails before any image is made.
    """

    def __init__(
        self,
        config: AuditConfig,
        plugins: PluginSet,
        store: Store,
        show_progress: bool = True,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store
        self.task = config.task
        check_disk(config, store.root)
        # An executor the caller passes (a fleet of audits sharing one cluster) stays the caller's to
        # close; otherwise the audit's `[executor]` is built here and closed by `close()`.
        self.owns_executor = executor is None
        if executor is None:
            executor = audit_executor(config, plugins)
        self.workspace = Workspace(config.task, plugins, store, executor, show_progress)
        self.tests: dict[str, DecisionTest] = {}
        for t in config.tests:
            try:
                self.tests[t.name] = plugins.get("test", t.test.use).spec.factory(t.test.settings)
            except TrainproveError as exc:
                raise InputError(f"{config.source}: [test {t.name}] {exc}") from None
        self.adapters: dict[str, SuspectAdapter] = {}  # every model judged in this audit, by name
        # per model: the images of every set it was asked about in full (key -> size), what a fixed design
        # would ask; a sequential audit asks fewer (the report gives both)
        self.fixed_queries: dict[str, dict[str, int]] = {}
        self.asked: dict[str, dict[str, int]] = {}  # per model: images of each set whose answers were used

    def close(self) -> None:
        """Close the executor this audit built (not one its caller passed in)."""
        if self.owns_executor:
            self.workspace.close()

    def __enter__(self) -> AuditRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def ask(self, name: str) -> Callable[[ImageSet], Answers] | None:
        """A way to query the model judged as `name` (a suspect or a control) on other images, for a
        decision test that needs more than the validation set: `ask(image_set)` returns its answers,
        cached per chunk and counted in that model's queries like the audit's own. None for a name the
        audit does not hold."""
        adapter = self.adapters.get(name)
        if adapter is None:
            return None

        def ask(image_set: ImageSet) -> Answers:
            return self.answers_upto(name, image_set, None)[0]

        return ask

    def open_suspects(self, cache: bool = True) -> dict[str, SuspectAdapter]:
        """Build every suspect's adapter and map its label space, or fail naming the table.

        Adapters are built cheaply where they can be (the timm adapter reads config.json and takes its
        weights' hash from the store's cache); each one that loads lazily and whose answers on the
        validation set are not all in the store is then loaded, so a checkpoint that cannot serve fails
        before any work. A suspect whose answers are all cached is never loaded. `cache=False` keeps the
        weights' hashes out of the store (`trainprove check` writes nothing)."""
        with self.workspace.accounts.phase("checking"):
            with identity_cache.using(self.store.root / identity_cache.KIND if cache else None):
                for suspect in self.config.suspects:
                    if suspect.name in self.adapters:
                        continue
                    source, where = self.config.source, f"suspect {suspect.name}"
                    try:
                        adapter = self.workspace.suspect_adapter(suspect.adapter)
                    except Exception as exc:  # noqa: BLE001 - a plugin's fault is reported, not a traceback
                        raise table_error(
                            exc, source, where, f"opening it with adapter {suspect.adapter.use!r}"
                        ) from None
                    if adapter.label_names is not None:
                        try:
                            self.task.label_map(list(adapter.label_names))
                        except ValueError as exc:
                            raise InputError(
                                f"{source}: [{where}] key 'label_names': the model's {exc} (set "
                                "`label_names` in its table to the model's class names in its output "
                                "order, or map them to the task's [task] classes)"
                            ) from None
                    self.adapters[suspect.name] = adapter
            validation = content_key(
                self.workspace.image_set_identity(self.generator, self.config.validation)
            )
        for suspect in self.config.suspects:
            adapter = self.adapters[suspect.name]
            if not self.workspace.has_answers(adapter, validation):
                try:
                    self.workspace.load(adapter)
                except TrainproveError as exc:
                    raise InputError(f"{self._where(suspect.name)} {exc}") from None
        return self.adapters

    def _where(self, name: str) -> str:
        return f"{self.config.source}: [suspect {name}]"

    def steps(self) -> int:
        """How many progress steps `run_audit` takes (sets, models, answer sets), for a caller's plan."""
        control = 3 if self.config.negative_control is not None else 0
        control += 3 if self.config.positive_control is not None else 0
        return 4 + len(self.config.suspects) + control

    # ---- the stages --------------------------------------------------------------------------------------

    @cached_property
    def generator(self) -> Generator:
        return self.workspace.generator(self.config.generator)

    @cached_property
    def shadow_set(self) -> ImageSet:
        return self.workspace.image_set("shadow", self.generator, self.config.shadow)

    @cached_property
    def validation(self) -> ImageSet:
        return self.workspace.image_set("validation", self.generator, self.config.validation)

    @cached_property
    def _shadow(self) -> tuple[SuspectAdapter, str]:
        return self.workspace.shadow_model(self.config.trainer, self.shadow_set)

    @property
    def shadow_model(self) -> SuspectAdapter:
        return self._shadow[0]

    @property
    def shadow_key(self) -> str:
        return self._shadow[1]

    @cached_property
    def _shadow_answers(self) -> tuple[Answers, str]:
        return self.workspace.answers("shadow", self.shadow_model, self.validation)

    @property
    def shadow_answers(self) -> Answers:
        return self._shadow_answers[0]

    @cached_property
    def batches(self) -> list[np.ndarray]:
        return validation_batches(
            len(self.validation), self.config.validation.batch_size, self.config.validation.seed
        )

    def suspect_answers(self, name: str, adapter: SuspectAdapter) -> tuple[Answers, str]:
        """A model's answers on the validation set (cached per chunk, budget-checked)."""
        return self.workspace.answers(name, adapter, self.validation)

    def answers_upto(
        self, name: str, image_set: ImageSet, look: Look | None
    ) -> tuple[Answers, np.ndarray, list[str]]:
        """The answers of the model judged as `name` to the images of `image_set` asked by `look` (all of
        them when `look` is None), those images' indices, and the answer sets' keys. In a sequential
        audit each round's slice is asked, cached and counted on its own (`trainprove_core.rounds`), so a
        later look, or a later run that needs more rounds, asks only the slices not yet answered."""
        adapter = self.adapters[name]
        if look is None:
            answers, key = self.workspace.answers(name, adapter, image_set)
            index, keys = np.arange(len(image_set)), [key]
        else:
            parts = [
                self.workspace.answers(name, adapter, rounds.slice_set(image_set, look.rounds, r))
                for r in range(look.round)
            ]
            answers, index = rounds.concat([a for a, _ in parts]), rounds.prefix(image_set, look)
            keys = [k for _, k in parts]
        self.note_asked(name, image_set, len(index))
        return answers, index, keys

    def note_asked(self, name: str, image_set: ImageSet, used: int) -> None:
        """Count that the answers of model `name` to `used` images of `image_set` were used (cached or
        not), against all of them, which a fixed design asks (the report's `queries_asked` and
        `queries_fixed_design`)."""
        self.fixed_queries.setdefault(name, {})[image_set.key] = len(image_set)
        self.asked.setdefault(name, {})[image_set.key] = used

    def evidence(
        self, name: str, answers: Answers, look: Look | None = None, index: np.ndarray | None = None
    ) -> Evidence:
        """The evidence on one model's `answers` to the validation set, or, at a `look` of a sequential
        audit, to the validation images at `index` (the ones asked so far)."""
        if index is None:
            return Evidence(
                self.task, self.validation.labels, self.batches, self.shadow_answers, answers, name, run=self
            )
        batches = validation_batches(
            len(index), self.config.validation.batch_size, self.config.validation.seed
        )
        shadow = rounds.subset(self.shadow_answers, index)
        labels = self.validation.labels[index]
        return Evidence(self.task, labels, batches, shadow, answers, name, run=self, look=look)

    def _verdict(self, test_cfg: Any, evidence: Evidence) -> Verdict:
        test = self.tests[test_cfg.name]
        if test.needs == "probabilities" and evidence.suspect.probabilities is None:
            return declined(
                evidence.suspect_name,
                test_cfg.name,
                "it needs probabilities and this suspect answers labels only",
            )
        if test.needs == "probabilities" and evidence.shadow.probabilities is None:
            return declined(
                evidence.suspect_name,
                test_cfg.name,
                "it needs probabilities and the shadow model answers labels only",
            )
        verdict = test.decide(evidence)
        verdict.test = test_cfg.name
        return verdict

    def _record(self, verdict: Verdict, test_cfg: Any, truth: str | None) -> dict[str, Any]:
        self.workspace.observe("trainprove_after_verdict", verdict=verdict)
        return _verdict_record(verdict, truth, self.plugins.get("test", test_cfg.test.use))

    def judge(self, evidence: Evidence, truth: str | None = None) -> list[dict[str, Any]]:
        """Every decision test's verdict on one model's evidence, as report records."""
        return [self._record(self._verdict(t, evidence), t, truth) for t in self.config.tests]

    @property
    def sequential(self) -> bool:
        """Whether suspects are judged after each round: rounds > 1 and every test is sequential."""
        return self.config.validation.rounds > 1 and all(
            getattr(self.tests[t.name], "sequential", False) for t in self.config.tests
        )

    def judge_suspect(self, name: str, truth: str | None = None) -> Judged:
        """Ask the suspect `name` and judge it (see `Judged`).

        In a sequential audit (`[validation] rounds` > 1) the suspect is asked one round at a time and each
        test that has not decided is judged on the answers so far; a test's first decision is its verdict,
        and asking stops once every test has one. With a test that is not sequential, every round is asked
        and all tests are judged once, on all of them."""
        k = self.config.validation.rounds
        if k == 1:
            answers, index, keys = self.answers_upto(name, self.validation, None)
            return Judged(answers, index, keys, self.judge(self.evidence(name, answers), truth), None)
        looks = [rounds.Look(r, k) for r in range(1, k + 1)] if self.sequential else [rounds.Look(k, k)]
        decided: dict[str, Verdict] = {}
        for look in looks:
            answers, index, keys = self.answers_upto(name, self.validation, look)
            evidence = self.evidence(name, answers, look, index)
            for t in self.config.tests:
                if t.name in decided:
                    continue
                verdict = self._verdict(t, evidence)
                verdict.details = {**verdict.details, "look": {"round": look.round, "rounds": k}}
                if verdict.decision != "inconclusive" or look.final:
                    decided[t.name] = verdict
            if len(decided) == len(self.config.tests):
                break
        records = [self._record(decided[t.name], t, truth) for t in self.config.tests]
        return Judged(answers, index, keys, records, look)

    def verdicts(
        self, name: str, answers: Answers, answers_key: str, truth: str | None
    ) -> list[dict[str, Any]]:
        """Every decision test's verdict on the model `name`, whose answers on the validation set are
        `answers` (store key `answers_key`), as report records with the `truth`.

        An unchanged verdict is not decided again: the records are kept in the store, keyed by everything
        a decision test reads (the audit file less its suspects and executor, the tests' plugins and
        versions, the suspect's name and answers, the shadow's answers, the validation set), and taken
        from there on the next run (observers still see every verdict)."""
        identity = self._verdicts_identity(name, answers_key)
        records = self._stored_verdicts(identity)
        if records is not None:
            self.workspace.accounts.add("verdicts_reused", len(records))
            fields = [f.name for f in dataclass_fields(Verdict)]
            for record in records:
                verdict = Verdict(**{k: record[k] for k in fields if k in record})
                self.workspace.observe("trainprove_after_verdict", verdict=verdict)
        else:
            with self.workspace.accounts.phase("decisions"):
                made = self.judge(self.evidence(name, answers))
            self.workspace.accounts.add("verdicts_made", len(made))
            text = json.dumps(made, default=_plain)
            records = json.loads(text)  # as a re-run will read them, so both runs report the same
            self.store.directory("verdicts", identity, lambda tmp: (tmp / VERDICTS).write_text(text))
        return [_with_truth(record, truth) for record in records]

    def _verdicts_identity(self, name: str, answers_key: str) -> dict[str, Any]:
        doc = {k: v for k, v in self.config.public_document().items() if k not in ("suspect", "executor")}
        return {
            "kind": "verdicts",
            "trainprove": __version__,
            "audit": doc,
            "tests": [[t.name, t.test.use, t.test.distribution, t.test.version] for t in self.config.tests],
            "suspect": name,
            "answers": answers_key,
            "shadow_answers": self._shadow_answers[1],
            "validation": self.validation.key,
        }

    def _stored_verdicts(self, identity: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        if not self.store.has("verdicts", identity):
            return None
        try:
            records = json.loads((self.store.location("verdicts", identity) / VERDICTS).read_text())
        except (OSError, ValueError):
            return None  # unreadable: decided again
        tests = [t.name for t in self.config.tests]
        if not isinstance(records, list) or [r.get("test") for r in records] != tests:
            return None
        return records

    def judge_control(
        self, name: str, trainer: PluginTable, images: ImageSet, kind: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Train a control model on `images` with `trainer`, and judge it like a suspect whose truth is
        known (`kind`: "negative" is not trained on the generator, "positive" is); its verdicts and key."""
        adapter, key = self.workspace.shadow_model(trainer, images)
        self.adapters[name] = adapter
        answers, answers_key = self.suspect_answers(name, adapter)
        truth = "not-trained-on-generator" if kind == "negative" else "trained-on-generator"
        return self.verdicts(name, answers, answers_key, truth), key


VERDICTS = "verdicts.json"
"""The file of a stored set of verdict records (`AuditRun.verdicts`)."""


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists, anything else as its text (for JSON)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _with_truth(record: Mapping[str, Any], truth: str | None) -> dict[str, Any]:
    decision = record["decision"]
    correct = None if truth is None or decision == "inconclusive" else decision == truth
    return {**record, "truth": truth, "correct": correct}


def apply_controls(
    verdicts: list[dict[str, Any]], control_verdicts: list[dict[str, Any]], kind: str, what: str
) -> list[str]:
    """Controls decide, not only warn. Where a test accuses the negative control (a model known not to be
    trained on the generator), that test's accusations in this audit become `inconclusive`; where a test
    clears the positive control (a model known to be trained on it), its clearings do. `what` describes
    the control. Returns the warnings."""
    wrong, overruled = {
        "negative": ("trained-on-generator", "accusations"),
        "positive": ("not-trained-on-generator", "clearings"),
    }[kind]
    warnings = []
    for v in control_verdicts:
        if v["decision"] != wrong:
            continue
        warnings.append(
            f"{kind} control failed: {v['test']} judged {what} {wrong} (it is not); its {overruled} in this "
            "audit are reported inconclusive."
        )
        for record in verdicts:
            if record["test"] == v["test"] and record["decision"] == wrong:
                record["details"] = {**record["details"], "overruled": f"{kind} control judged {wrong}"}
                record["explanation"] = (
                    f"{record['suspect']}: inconclusive: {v['test']} would say {wrong}, but it says the same "
                    f"of {what}. Was: " + record["explanation"]
                )
                record["decision"] = "inconclusive"
                record["correct"] = None
    return warnings


def run_audit(
    config: AuditConfig,
    plugins: PluginSet,
    out_dir: str | Path,
    store: Store,
    show_progress: bool = True,
    html: bool = True,
    executor: Executor | None = None,
) -> AuditResult:
    """Run the audit `config` describes, write report.json (and report.html unless `html` is false) to
    `out_dir`, return both.

    Bad input found before any work (an unknown checkpoint, a label space that does not match, a decision
    test's settings) raises before `out_dir` is created. A suspect whose queries fail (dead endpoint,
    budget) is reported in `errors` and the audit goes on with the others; everything answered so far
    stays cached. An observer (lifecycle hook) that raises is reported in `errors`; the audit completes.
    The audit's `[executor]` is closed when it ends, on errors and Ctrl-C too; an `executor` passed in
    (several audits sharing one) is used instead and left open.
    """
    with AuditRun(config, plugins, store, show_progress, executor) as run:
        return _run_audit(run, out_dir, html)


def _run_audit(run: AuditRun, out_dir: str | Path, html: bool) -> AuditResult:
    from .report import write_report

    config, plugins, store, show_progress = run.config, run.plugins, run.store, run.workspace.show_progress
    accounts = run.workspace.accounts  # report.json's `timings` (seconds per phase) and `counts`
    adapters = run.open_suspects()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = config.task
    ws = run.workspace
    with progress.plan(run.steps(), f"audit {Path(config.source).name}", show_progress):
        ws.observe("trainprove_before_audit", config=config, out_dir=out_dir)
        shadow_set, validation = run.shadow_set, run.validation
        shadow_answers = run.shadow_answers
        errors: list[str] = []
        suspects_report: list[dict[str, Any]] = []
        verdicts: list[dict[str, Any]] = []
        hashes = {
            "shadow_set": shadow_set.key,
            "validation_set": validation.key,
            "shadow_model": run.shadow_key,
            "shadow_answers": run._shadow_answers[1],
        }
        # Every suspect at once: independent models are queried concurrently where the executor can. In a
        # sequential audit each suspect is asked round by round instead (`AuditRun.judge_suspect`).
        sequential = config.validation.rounds > 1
        asked = (
            [None] * len(config.suspects)
            if sequential
            else ws.answers_many([(s.name, adapters[s.name], validation) for s in config.suspects])
        )
        for suspect, outcome in zip(config.suspects, asked, strict=True):
            entry: dict[str, Any] = {
                "name": suspect.name,
                "use": suspect.adapter.use,
                "truth": suspect.truth,
                "distribution": suspect.adapter.distribution,
                "version": suspect.adapter.version,
            }
            suspects_report.append(entry)
            began = time.perf_counter()
            try:
                if sequential:  # asked round by round, each test judged until it decides
                    judged = run.judge_suspect(suspect.name, suspect.truth)
                    answers, index = judged.answers, judged.index
                    key = judged.keys[0] if len(judged.keys) == 1 else content_key({"slices": judged.keys})
                else:
                    answers, key = ws._raise(outcome)
                    index = np.arange(len(validation))
                    run.note_asked(suspect.name, validation, len(validation))
                hashes[f"answers:{suspect.name}"] = key
                entry.update(
                    answers=key,
                    accuracy=float(np.mean(answers.labels == validation.labels[index])),
                    returns="probabilities" if answers.probabilities is not None else "labels",
                    unanswered=int(np.count_nonzero(answers.labels < 0)),
                )
                if sequential:
                    entry["rounds"] = {"asked": judged.look.round, "of": judged.look.rounds}
                    verdicts += judged.records
                else:
                    verdicts += run.verdicts(suspect.name, answers, key, suspect.truth)
            except TrainproveError as exc:
                errors.append(str(exc))
                entry["error"] = str(exc)
            finally:
                usage = getattr(adapters[suspect.name], "usage", None)  # a remote adapter's own count
                entry["queries_sent"] = (
                    usage.sent if usage is not None else ws.queries_sent.get(suspect.name, 0)
                )
                if usage is not None:
                    entry["queries_paid"] = usage.paid
                remarks = getattr(adapters[suspect.name], "remarks", None)  # what its answers had
                if remarks:
                    entry["remarks"] = [str(r) for r in remarks]
                entry["queries_asked"] = sum(run.asked.get(suspect.name, {}).values())
                entry["queries_fixed_design"] = sum(run.fixed_queries.get(suspect.name, {}).values())
                close = getattr(adapters[suspect.name], "close", None)
                if callable(close):
                    close()
                entry["seconds"] = round(time.perf_counter() - began, 3)

        control: dict[str, Any] | None = None
        positive: dict[str, Any] | None = None
        warnings: list[str] = []
        if config.negative_control is not None and config.control_set is not None:
            source = run.workspace.generator(config.negative_control)
            images = ws.image_set("negative-control", source, config.control_set)
            control_verdicts, hashes["negative_control_model"] = run.judge_control(
                f"negative control ({config.negative_control.use})", config.trainer, images, "negative"
            )
            control = {"source": config.negative_control.use, "verdicts": control_verdicts}
            warnings += apply_controls(
                verdicts,
                control_verdicts,
                "negative",
                f"a model trained on {config.negative_control.use}'s images",
            )
        if config.positive_control is not None and config.positive_set is not None:
            images = ws.image_set("positive-control", run.generator, config.positive_set)
            positive_verdicts, hashes["positive_control_model"] = run.judge_control(
                f"positive control ({config.positive_control.use})",
                config.positive_control,
                images,
                "positive",
            )
            positive = {"trainer": config.positive_control.use, "verdicts": positive_verdicts}
            warnings += apply_controls(
                verdicts,
                positive_verdicts,
                "positive",
                f"a model trained on {config.generator.use}'s own images with another recipe",
            )

    shadow_accuracy = float(np.mean(shadow_answers.labels == validation.labels))
    chance = 1.0 / task.num_classes
    if shadow_accuracy < chance + 0.1:
        warnings.insert(
            0,
            f"the shadow model scores {shadow_accuracy:.3f} on its own generator's validation images, near "
            f"chance ({chance:.3f}): it did not learn the task from the shadow set, so verdicts that compare "
            "a suspect with it say nothing. Train it longer or with a recipe that suits the image size "
            "([shadow] epochs, lr, batch_size, arch; `trainprove plugins timm` lists every key).",
        )
    report = {
        "trainprove_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(accounts.total(), 2),
        "task": {"classes": list(task.classes), "image_size": task.image_size},
        "generator": {"use": config.generator.use, "identity": dict(run.generator.identity)},
        "shadow": {
            "images": len(shadow_set),
            "model": run.shadow_key,
            "validation_accuracy": float(np.mean(shadow_answers.labels == validation.labels)),
        },
        "validation": {
            "images": len(validation),
            "batches": len(run.batches),
            "batch_size": config.validation.batch_size,
        },
        "suspects": suspects_report,
        "verdicts": verdicts,
        "negative_control": control,
        "positive_control": positive,
        "warnings": warnings,
        "errors": errors + ws.observer_errors,
        "timings": accounts.timings(),
        "counts": dict(accounts.counts),
        "manifest": {
            "audit_file": config.source,
            "audit": config.public_document(),
            "seeds": {
                "audit": config.seed,
                "shadow": config.shadow.seed,
                "validation": config.validation.seed,
            },
            "plugins": [
                {"name": name, "distribution": dist, "version": version}
                for name, (dist, version) in sorted(plugins.sources.items())
            ],
            "hashes": hashes,
            "store": str(store.root),
        },
    }
    # The one place the report's text is cleaned of secrets (a server's answer quoted in an error, a
    # token a plugin put in an explanation): report.json, report.html and what the CLI prints come from it.
    report = secrets.redact_all(report)
    write_report(report, out_dir, html=html, accounts=accounts)  # adds timings.report, sets wall_seconds
    ws.observe("trainprove_after_audit", report=report, out_dir=out_dir)
    # `errors` are the suspects that could not be judged (the CLI's exit code 1); an observer's failure is
    # in the report's errors and printed as a warning, it judges nobody.
    return AuditResult(
        report, out_dir, secrets.redact_all(errors), secrets.redact_all(list(ws.observer_errors))
    )
