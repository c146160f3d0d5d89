"""Answers: what a model says about an image set, in the task's label space, cached per chunk.

The label-space mapping lives here, once (`label_map`, used when suspects are opened and when they are
asked), as does the query budget: a suspect whose answers would exceed its budget is not asked at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace as dataclass_replace
from typing import Any

import numpy as np

from ..accounting import phase
from ..errors import BudgetExceeded, InputError, TrainproveError
from ..records import Answers, Attaches, ImageSet, LoadsLazily, Outcome, SuspectAdapter, Work
from ..store import content_key
from ..task import Task
from .jobs import Job, raise_error
from .models import Models

NOT_ANSWERED = -1
"""The label of an image a model did not answer (in `Answers.labels`)."""


def label_map(task: Task, adapter: SuspectAdapter, where: str) -> np.ndarray | None:
    """Where each of the model's labels falls in the task's classes (None: the model answers in the task's
    own order), or an `InputError` that starts with `where` and says how to fix the mapping."""
    if adapter.label_names is None:
        return None
    try:
        return np.array(task.label_map(list(adapter.label_names)), dtype=np.int64)
    except ValueError as exc:
        raise InputError(
            f"{where}{exc} (set `label_names` in its table to the model's class names in its output "
            "order, or map them to the task's [task] classes)"
        ) from None


class Asking(Models):
    """Models' answers on image sets, budget-checked and cached per chunk (a layer of `Workspace`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[int] = set()  # the adapters `load` has loaded (by id)

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
        if isinstance(adapter, LoadsLazily) and id(adapter) not in self._loaded:
            adapter.load()
            self._loaded.add(id(adapter))
            self.accounts.add("models_loaded")

    def answers(self, name: str, adapter: SuspectAdapter, image_set: ImageSet) -> tuple[Answers, str]:
        """`adapter`'s answers on `image_set`, in the task's label space; cached per chunk, budget-checked."""
        return self.answers_all([(name, adapter, image_set)])[0]

    def answers_all(self, asks: Sequence[tuple[str, SuspectAdapter, ImageSet]]) -> list[tuple[Answers, str]]:
        """`answers` for several (name, adapter, image set), queried at once where the executor runs work
        in parallel (a decision test's reference models); raises the first model's error."""
        return [raise_error(result) for result in self.answers_many(asks)]

    @phase("queries")
    def answers_many(
        self, asks: Sequence[tuple[str, SuspectAdapter, ImageSet]]
    ) -> list[tuple[Answers, str] | TrainproveError]:
        """`answers` for several (name, adapter, image set) at once: independent models are queried
        concurrently where the executor runs work in parallel. A model whose queries fail (bad label
        space, budget, a dead endpoint) gives its `TrainproveError` in its place; the others complete."""
        if not asks:
            return []
        jobs: list[Job | TrainproveError] = []
        for name, adapter, image_set in asks:
            try:
                jobs.append(self._answer_job(name, adapter, image_set))
            except TrainproveError as exc:
                jobs.append(exc)
            self.queries_sent.setdefault(name, 0)
        runnable = [j for j in jobs if isinstance(j, Job)]
        desc = f"query {asks[0][0]}" if len(asks) == 1 else f"query {len(asks)} models"
        results = iter(self.run_jobs(runnable, desc))
        out: list[tuple[Answers, str] | TrainproveError] = []
        for (name, _, _), job in zip(asks, jobs, strict=True):
            if not isinstance(job, Job):
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

    def _answer_job(self, name: str, adapter: SuspectAdapter, image_set: ImageSet) -> Job:
        mapping = label_map(self.task, adapter, f"suspect {name!r}: ")
        identity = self.answers_identity(adapter, image_set.key)
        size = max(1, int(adapter.batch_size))
        chunks = [np.arange(i, min(i + size, len(image_set))) for i in range(0, len(image_set), size)]
        self._count("answers", "answers", identity, chunks)
        if not self.store.has("answers", identity):
            self._check_budget(name, adapter, identity, chunks)
            self.load(adapter)
            if isinstance(adapter, Attaches):  # the adapter's own folder of the store
                adapter.attach(self.store.root / "ledgers" / content_key(dict(adapter.identity)))
        ref, remote = self.model_ref(adapter), bool(adapter.cost.remote)
        if ref.kind == "suspect" and isinstance(adapter, Attaches):  # a worker attaches it too
            ledger = self.store.root / "ledgers" / content_key(dict(adapter.identity))
            ref = dataclass_replace(ref, ledger=str(ledger))
        works = [
            Work("query", ref, image_set.images[idx], len(idx), i, f"query {name}", remote, local=adapter)
            for i, idx in enumerate(chunks)
        ]

        def finish(work: Work, outcome: Outcome) -> dict[str, np.ndarray]:
            self._account(work, outcome, name)
            return self._to_task_space(name, adapter, outcome.value, work.size, mapping)

        paid = bool(adapter.cost.remote or adapter.cost.budget is not None)  # damaged: not re-asked
        return Job("answers", identity, works, finish, paid)

    def _to_task_space(
        self,
        name: str,
        adapter: SuspectAdapter,
        answers: Answers,
        expected: int,
        mapping: np.ndarray | None,
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
        if mapping is not None:
            mapped[answered] = mapping[labels[answered]]
        out = {"labels": mapped}
        if answers.probabilities is not None:
            probs = np.asarray(answers.probabilities, dtype=np.float32)
            if probs.shape != (expected, len(names)):
                raise InputError(
                    f"suspect {name!r} answered probabilities of shape {probs.shape}, "
                    f"expected ({expected}, {len(names)})"
                )
            if mapping is not None:
                reordered = np.empty_like(probs)
                reordered[:, mapping] = probs
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
