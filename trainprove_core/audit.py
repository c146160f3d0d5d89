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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import AuditConfig, ImageSetConfig, PluginTable, validate_table
from .errors import BudgetExceeded, InputError, TrainproveError
from .plugins import PluginSet
from .progress import progress
from .records import Answers, Evidence, GenerationRequest, Generator, SuspectAdapter, Verdict
from .store import Store, content_key, derive_seed
from .task import Task


@dataclass
class ImageSet:
    """Images (uint8, N x S x S x 3 at the task's size) with their classes, and the key they are stored
    under."""

    role: str
    key: str
    images: np.ndarray
    labels: np.ndarray
    identity: dict[str, Any]

    def __len__(self) -> int:
        return len(self.labels)


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
    """A PNG with `per_class` images of each class in a row (enlarged so small images stay visible)."""
    from PIL import Image

    size = task.image_size
    scale = max(1, 64 // size)
    sheet = np.full((task.num_classes * size, per_class * size, 3), 255, dtype=np.uint8)
    for c in range(task.num_classes):
        for j, i in enumerate(np.flatnonzero(image_set.labels == c)[:per_class]):
            sheet[c * size : (c + 1) * size, j * size : (j + 1) * size] = image_set.images[i]
    Image.fromarray(sheet).resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST).save(path)


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

    Decision tests get it as `Evidence.workspace` to ask for more (image sets from other generators, extra
    shadow models), cached like the audit's own.
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
        self.config: AuditConfig | None = None  # the audit being run, for tests that need its settings
        self._generators: dict[str, Generator] = {}

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

        arrays = self.store.chunked("image-sets", identity, chunks, self._runner(make, f"{role} set", chunks))
        image_set = ImageSet(role, content_key(identity), arrays["images"], arrays["labels"], identity)
        self.plugins.hook.trainprove_after_generate(role=role, image_set=image_set)
        return image_set

    def _runner(self, fn: Any, desc: str, chunks: Sequence[Sequence[Any]]) -> Any:
        def run(pending: Sequence[int]):
            total = sum(len(chunks[i]) for i in pending)
            with progress(total=total, desc=desc, unit="img", enabled=self.show_progress) as bar:
                for index, arrays in self.executor.map(fn, pending):
                    bar.update(len(chunks[index]))
                    yield index, arrays

        return run

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
        model_dir = self.store.directory(
            "models", identity, lambda tmp: trainer.train(image_set.images, image_set.labels, self.task, tmp)
        )
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
        arrays = self.store.chunked("answers", identity, chunks, self._runner(ask, f"query {name}", chunks))
        answers = Answers(arrays["labels"], arrays.get("probabilities"))
        self.plugins.hook.trainprove_after_query(
            suspect=name, answers=answers, queries=self.queries_sent[name]
        )
        return answers, content_key(identity)

    def _label_map(self, name: str, adapter: SuspectAdapter) -> np.ndarray | None:
        if adapter.label_names is None:
            return None
        try:
            return np.array(self.task.label_map(list(adapter.label_names)), dtype=np.int64)
        except ValueError as exc:
            raise InputError(f"suspect {name!r}: {exc}") from None

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
            unknown = sorted({str(v) for v in labels if v not in names})
            if unknown:
                raise InputError(f"suspect {name!r} answered labels outside its label space: {unknown[:5]}")
            labels = np.array([names.index(v) for v in labels], dtype=np.int64)
        labels = labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise InputError(
                f"suspect {name!r} answered label indices outside 0..{len(names) - 1}: "
                f"{sorted(set(labels[(labels < 0) | (labels >= len(names))].tolist()))[:5]}"
            )
        out = {"labels": label_map[labels] if label_map is not None else labels}
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


def declined(suspect: str, test: str, reason: str) -> Verdict:
    """The verdict of a test that cannot run on this evidence."""
    return Verdict(
        suspect, test, "inconclusive", f"{suspect}: {test} declined: {reason}.", details={"declined": True}
    )


def run_audit(
    config: AuditConfig,
    plugins: PluginSet,
    out_dir: str | Path,
    store: Store,
    show_progress: bool = True,
) -> AuditResult:
    """Run the audit `config` describes, write report.json and report.html to `out_dir`, return both.

    Bad input found before any work (an unknown checkpoint, a label space that does not match) raises.
    A suspect whose queries fail (dead endpoint, budget) is reported in `errors` and the audit goes on with
    the others; everything answered so far stays cached.
    """
    from .report import write_report

    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = config.task
    executor = plugins.get("executor", config.executor.use).spec.factory(config.executor.settings)
    ws = Workspace(task, plugins, store, executor, show_progress)
    ws.config = config
    plugins.hook.trainprove_before_audit(config=config, out_dir=out_dir)

    adapters: dict[str, SuspectAdapter] = {}
    for suspect in config.suspects:
        spec = plugins.get("suspect", suspect.adapter.use).spec
        try:
            adapters[suspect.name] = spec.factory(suspect.adapter.settings, task)
        except TrainproveError as exc:
            raise InputError(f"{config.source}: [suspect {suspect.name}] {exc}") from None
        ws._label_map(suspect.name, adapters[suspect.name])
    tests = {t.name: plugins.get("test", t.test.use).spec.factory(t.test.settings) for t in config.tests}

    generator = ws.generator(config.generator)
    shadow_set = ws.image_set("shadow", generator, config.shadow)
    validation = ws.image_set("validation", generator, config.validation)
    shadow_adapter, shadow_key = ws.shadow_model(config.trainer, shadow_set)
    shadow_answers, shadow_answers_key = ws.answers("shadow", shadow_adapter, validation)
    batches = validation_batches(len(validation), config.validation.batch_size, config.validation.seed)

    def judge(evidence: Evidence, truth: str | None) -> list[dict[str, Any]]:
        """Every decision test's verdict on one model's evidence, as report records."""
        records = []
        for test_cfg in config.tests:
            test = tests[test_cfg.name]
            if test.needs == "probabilities" and evidence.suspect.probabilities is None:
                verdict = declined(
                    evidence.suspect_name,
                    test_cfg.name,
                    "it needs probabilities and this suspect answers labels only",
                )
            elif test.needs == "probabilities" and evidence.shadow.probabilities is None:
                verdict = declined(
                    evidence.suspect_name,
                    test_cfg.name,
                    "it needs probabilities and the shadow model answers labels only",
                )
            else:
                verdict = test.decide(evidence)
                verdict.test = test_cfg.name
            plugins.hook.trainprove_after_verdict(verdict=verdict)
            records.append(_verdict_record(verdict, truth, plugins.get("test", test_cfg.test.use)))
        return records

    errors: list[str] = []
    suspects_report: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    hashes = {
        "shadow_set": shadow_set.key,
        "validation_set": validation.key,
        "shadow_model": shadow_key,
        "shadow_answers": shadow_answers_key,
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
            answers, key = ws.answers(suspect.name, adapters[suspect.name], validation)
        except TrainproveError as exc:
            errors.append(str(exc))
            entry["error"] = str(exc)
            entry["queries_sent"] = ws.queries_sent.get(suspect.name, 0)
            continue
        finally:
            close = getattr(adapters[suspect.name], "close", None)
            if callable(close):
                close()
        hashes[f"answers:{suspect.name}"] = key
        entry.update(
            queries_sent=ws.queries_sent[suspect.name],
            answers=key,
            accuracy=float(np.mean(answers.labels == validation.labels)),
            returns="probabilities" if answers.probabilities is not None else "labels",
        )
        evidence = Evidence(task, validation.labels, batches, shadow_answers, answers, suspect.name, ws)
        verdicts += judge(evidence, suspect.truth)

    control: dict[str, Any] | None = None
    warnings: list[str] = []
    if config.negative_control is not None and config.control_set is not None:
        control_gen = ws.generator(config.negative_control)
        control_train = ws.image_set("negative-control", control_gen, config.control_set)
        control_adapter, control_key = ws.shadow_model(config.trainer, control_train)
        name = f"negative control ({config.negative_control.use})"
        control_answers, _ = ws.answers(name, control_adapter, validation)
        hashes["negative_control_model"] = control_key
        evidence = Evidence(task, validation.labels, batches, shadow_answers, control_answers, name, ws)
        control_verdicts = judge(evidence, "not-trained-on-generator")
        control = {"source": config.negative_control.use, "verdicts": control_verdicts}
        for v in control_verdicts:
            if v["decision"] != "not-trained-on-generator":
                warnings.append(
                    f"negative control failed: {v['test']} judged a model trained on "
                    f"{config.negative_control.use}'s images {v['decision']} (it is not). This audit may not "
                    f"tell {config.generator.use}'s images from others'; treat its verdicts with care."
                )

    report = {
        "trainprove_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.time() - started, 2),
        "task": {"classes": list(task.classes), "image_size": task.image_size},
        "generator": {"use": config.generator.use, "identity": dict(generator.identity)},
        "shadow": {
            "images": len(shadow_set),
            "model": shadow_key,
            "validation_accuracy": float(np.mean(shadow_answers.labels == validation.labels)),
        },
        "validation": {
            "images": len(validation),
            "batches": len(batches),
            "batch_size": config.validation.batch_size,
        },
        "suspects": suspects_report,
        "verdicts": verdicts,
        "negative_control": control,
        "warnings": warnings,
        "errors": errors,
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
    write_report(report, out_dir)
    plugins.hook.trainprove_after_audit(report=report, out_dir=out_dir)
    return AuditResult(report, out_dir, errors)
