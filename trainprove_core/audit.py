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

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, progress, rounds
from .config import AuditConfig, ImageSetConfig, PluginTable, validate_table
from .errors import BudgetExceeded, InputError, TrainproveError
from .evidence import declined
from .plugins import PluginSet
from .records import (
    Answers,
    DecisionTest,
    Evidence,
    GenerationRequest,
    Generator,
    ImageSet,
    SuspectAdapter,
    Verdict,
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


def validation_batches(n_images: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The paper's partition of the validation set into n = ceil(N / batch_size) query batches.

    Images are shuffled with the set's seed so every batch mixes classes, and split into n batches of
    near-equal size (5,000 images at 128 give the paper's n = 40, of 125 each), so no batch is a tiny
    remainder whose accuracy would inflate the shadow's spread.
    """
    n = max(1, math.ceil(n_images / batch_size))
    order = np.random.default_rng(seed).permutation(n_images)
    return [np.sort(b) for b in np.array_split(order, n)]


class Workspace:
    """The cached building blocks of audits: image sets, shadow models, answers.

    Decision tests reach it as `Evidence.run.workspace` to ask for more (image sets from other generators,
    reference models), cached like the audit's own.
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
        self._generators: dict[str, Generator] = {}

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
        executor. An audit's own comes from `AuditRun`."""
        spec = plugins.get("executor", executor).spec
        return cls(task, plugins, store, spec.factory(dict(executor_settings or {})), show_progress)

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
        return PluginTable(use, validated, dict(validated), registered.distribution, registered.version)

    def generator(self, table: PluginTable) -> Generator:
        """The generator a table selects (built once per audit)."""
        key = content_key({"use": table.use, "settings": table.settings})
        if key not in self._generators:
            spec = self.plugins.get("generator", table.use).spec
            self._generators[key] = spec.factory(table.settings)
        return self._generators[key]

    # ---- image sets -------------------------------------------------------------------------------------

    def image_set(self, role: str, generator: Generator, cfg: ImageSetConfig) -> ImageSet:
        """`cfg.per_class` images of every class from `generator`, prompted with `cfg.prompt`."""
        # An image's seed depends on (set seed, prompt, index) only: a set resumes and regrows identically.
        requests = [
            GenerationRequest(prompt, ci, name, derive_seed(cfg.seed, prompt, j))
            for ci, name in enumerate(self.task.classes)
            for prompt in [cfg.prompt.format(label=name)]
            for j in range(cfg.per_class)
        ]
        identity = {
            "kind": "image-set",
            "generator": dict(generator.identity),
            "prompt": cfg.prompt,
            "per_class": cfg.per_class,
            "seed": cfg.seed,
            "classes": list(self.task.classes),
            "image_size": self.task.image_size,
            "resize": "bilinear",
        }
        size = max(1, int(generator.batch_size))
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]

        def make(index: int) -> dict[str, np.ndarray]:
            batch = chunks[index]
            images = resize_to_task(np.asarray(generator.generate(batch)), self.task.image_size)
            if len(images) != len(batch):
                raise InputError(f"generator returned {len(images)} images for {len(batch)} requests")
            return {"images": images, "labels": np.array([r.class_index for r in batch], dtype=np.int64)}

        arrays = self._chunked("image-sets", identity, chunks, make, f"generate {role} set")
        image_set = ImageSet(role, content_key(identity), arrays["images"], arrays["labels"], identity)
        self.observe("trainprove_after_generate", role=role, image_set=image_set)
        return image_set

    def _chunked(self, kind: str, identity: Mapping[str, Any], chunks: Sequence[Any], fn: Any, desc: str):
        """`Store.chunked` with one progress step over the pending chunks (a cached artifact counts as a
        step done)."""
        ran = False

        def run(pending: Sequence[int]):
            nonlocal ran
            ran = True
            total = sum(len(chunks[i]) for i in pending)
            with progress.step(desc, total=total, unit="img", enabled=self.show_progress) as bar:
                for index, arrays in self.executor.map(fn, pending):
                    bar.update(len(chunks[index]))
                    yield index, arrays

        arrays = self.store.chunked(kind, identity, chunks, run)
        if not ran:
            progress.skip()
        return arrays

    def observe(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook with every observer isolated (`PluginSet.observe`): one that raises is
        recorded in `observer_errors` (and the report's `errors`) and the audit goes on."""
        self.observer_errors += self.plugins.observe(hook, **kwargs)

    # ---- shadow models ----------------------------------------------------------------------------------

    def trained_model(self, table: PluginTable, image_set: ImageSet) -> tuple[Path, Any, str]:
        """The directory of a model trained on `image_set` by the trainer `table` selects (trained now
        unless the store has it), the trainer, and the model's key."""
        trainer = self.plugins.get("shadow-trainer", table.use).spec.factory(table.settings)
        identity = {
            "kind": "model",
            "trainer": dict(trainer.identity),
            "image_set": image_set.key,
            "classes": list(self.task.classes),
        }
        if self.store.has("models", identity):
            progress.skip()
            return self.store.location("models", identity), trainer, content_key(identity)

        def train(tmp: Path) -> None:
            with progress.step(f"train model on {image_set.role} set", enabled=self.show_progress):
                trainer.train(image_set.images, image_set.labels, self.task, tmp)

        model_dir = self.store.directory("models", identity, train)
        return model_dir, trainer, content_key(identity)

    def shadow_model(self, table: PluginTable, shadow_set: ImageSet) -> tuple[SuspectAdapter, str]:
        """The shadow model trained on `shadow_set` by the trainer `table` selects, opened for queries."""
        model_dir, trainer, key = self.trained_model(table, shadow_set)
        return trainer.open(model_dir, self.task), key

    # ---- answers ----------------------------------------------------------------------------------------

    def answers(self, name: str, adapter: SuspectAdapter, image_set: ImageSet) -> tuple[Answers, str]:
        """`adapter`'s answers on `image_set`, in the task's label space; cached per chunk, budget-checked."""
        label_map = self._label_map(name, adapter)
        identity = {
            "kind": "answers",
            "model": dict(adapter.identity),
            "image_set": image_set.key,
            "label_names": list(adapter.label_names) if adapter.label_names is not None else None,
        }
        size = max(1, int(adapter.batch_size))
        chunks = [np.arange(i, min(i + size, len(image_set))) for i in range(0, len(image_set), size)]
        if not self.store.has("answers", identity):
            self._check_budget(name, adapter, identity, chunks)

        def ask(index: int) -> dict[str, np.ndarray]:
            idx = chunks[index]
            answers = adapter.predict(image_set.images[idx])
            self.queries_sent[name] = self.queries_sent.get(name, 0) + len(idx)
            return self._to_task_space(name, adapter, answers, len(idx), label_map)

        self.queries_sent.setdefault(name, 0)
        arrays = self._chunked("answers", identity, chunks, ask, f"query {name}")
        answers = Answers(arrays["labels"], arrays.get("probabilities"))
        self.observe("trainprove_after_query", suspect=name, answers=answers, queries=self.queries_sent[name])
        return answers, content_key(identity)

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
        self, config: AuditConfig, plugins: PluginSet, store: Store, show_progress: bool = True
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.store = store
        self.task = config.task
        try:
            executor = plugins.get("executor", config.executor.use).spec.factory(config.executor.settings)
        except TrainproveError as exc:
            raise InputError(f"{config.source}: [executor] {exc}") from None
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

    def open_suspects(self) -> dict[str, SuspectAdapter]:
        """Build every suspect's adapter (checkpoint read, label space mapped), or fail naming the table."""
        for suspect in self.config.suspects:
            if suspect.name in self.adapters:
                continue
            spec = self.plugins.get("suspect", suspect.adapter.use).spec
            where = f"{self.config.source}: [suspect {suspect.name}]"
            try:
                adapter = spec.factory(suspect.adapter.settings, self.task)
                self.workspace._label_map(suspect.name, adapter)
            except TrainproveError as exc:
                raise InputError(f"{where} {exc}") from None
            self.adapters[suspect.name] = adapter
        return self.adapters

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
        self.fixed_queries.setdefault(name, {})[image_set.key] = len(image_set)
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
        self.asked.setdefault(name, {})[image_set.key] = len(index)
        return answers, index, keys

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

    def judge_control(
        self, name: str, trainer: PluginTable, images: ImageSet, kind: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Train a control model on `images` with `trainer`, and judge it like a suspect whose truth is
        known (`kind`: "negative" is not trained on the generator, "positive" is); its verdicts and key."""
        adapter, key = self.workspace.shadow_model(trainer, images)
        self.adapters[name] = adapter
        answers, _ = self.suspect_answers(name, adapter)
        truth = "not-trained-on-generator" if kind == "negative" else "trained-on-generator"
        return self.judge(self.evidence(name, answers), truth), key


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
) -> AuditResult:
    """Run the audit `config` describes, write report.json (and report.html unless `html` is false) to
    `out_dir`, return both.

    Bad input found before any work (an unknown checkpoint, a label space that does not match, a decision
    test's settings) raises before `out_dir` is created. A suspect whose queries fail (dead endpoint,
    budget) is reported in `errors` and the audit goes on with the others; everything answered so far
    stays cached. An observer (lifecycle hook) that raises is reported in `errors`; the audit completes.
    """
    from .report import Stopwatch, write_report

    started = time.time()
    clock = Stopwatch()  # report.json's `timings`: seconds per stage
    run = AuditRun(config, plugins, store, show_progress)
    adapters = run.open_suspects()
    clock.lap("checking")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = config.task
    ws = run.workspace
    with progress.plan(run.steps(), f"audit {Path(config.source).name}", show_progress):
        ws.observe("trainprove_before_audit", config=config, out_dir=out_dir)
        shadow_set, validation = run.shadow_set, run.validation
        clock.lap("image_sets")
        shadow_answers = run.shadow_answers
        clock.lap("shadow_model")
        errors: list[str] = []
        suspects_report: list[dict[str, Any]] = []
        verdicts: list[dict[str, Any]] = []
        hashes = {
            "shadow_set": shadow_set.key,
            "validation_set": validation.key,
            "shadow_model": run.shadow_key,
            "shadow_answers": run._shadow_answers[1],
        }
        for suspect in config.suspects:
            entry: dict[str, Any] = {
                "name": suspect.name,
                "use": suspect.adapter.use,
                "truth": suspect.truth,
                "distribution": suspect.adapter.distribution,
                "version": suspect.adapter.version,
            }
            suspects_report.append(entry)
            try:
                judged = run.judge_suspect(suspect.name, suspect.truth)
                clock.lap("queries", suspect.name)  # with the decisions, which may ask for more
                key = judged.keys[0] if len(judged.keys) == 1 else content_key({"slices": judged.keys})
                hashes[f"answers:{suspect.name}"] = key
                answers = judged.answers
                entry.update(
                    answers=key,
                    accuracy=float(np.mean(answers.labels == validation.labels[judged.index])),
                    returns="probabilities" if answers.probabilities is not None else "labels",
                )
                if judged.look is not None:
                    entry["rounds"] = {"asked": judged.look.round, "of": judged.look.rounds}
                verdicts += judged.records
            except TrainproveError as exc:
                errors.append(str(exc))
                entry["error"] = str(exc)
            finally:
                entry["queries_sent"] = ws.queries_sent.get(suspect.name, 0)
                entry["queries_asked"] = sum(run.asked.get(suspect.name, {}).values())
                entry["queries_fixed_design"] = sum(run.fixed_queries.get(suspect.name, {}).values())
                close = getattr(adapters[suspect.name], "close", None)
                if callable(close):
                    close()
                clock.lap("queries", suspect.name)

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

    clock.lap("controls")
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
        "wall_seconds": round(time.time() - started, 2),
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
        "timings": clock.timings(),
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
    write_report(report, out_dir, html=html, clock=clock)  # adds timings.report, sets wall_seconds
    ws.observe("trainprove_after_audit", report=report, out_dir=out_dir)
    # `errors` are the suspects that could not be judged (the CLI's exit code 1); an observer's failure is
    # in the report's errors and printed as a warning, it judges nobody.
    return AuditResult(report, out_dir, errors, list(ws.observer_errors))
