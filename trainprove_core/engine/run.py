"""One audit's stages as one typed object (`AuditRun`): checking, then each stage made once.

Judging is not here (`verdicts`, `sequential`), nor the report (`report`): the run is what a decision test
gets as `Evidence.run`, to ask the workspace for more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import numpy as np

from .. import identity_cache, progress, rounds
from ..config import AuditConfig, check_disk, image_sets, table_error
from ..errors import InputError, TrainproveError
from ..plugins import PluginSet
from ..records import (
    Answers,
    Closable,
    DecisionTest,
    Evidence,
    Executor,
    Generator,
    ImageSet,
    Plans,
    ReservesSteps,
    SuspectAdapter,
)
from ..rounds import Look
from ..store import Store, content_key
from .answers import label_map
from .images import validation_batches
from .jobs import audit_executor
from .workspace import Workspace


class AuditRun:
    """One audit as one typed object: its stages, each made once, from the store when it can be.

        generator ─▶ shadow_set ─▶ shadow_model ─▶ shadow_answers
                  └▶ validation ──────────────────┘      batches
        suspect_answers(name, adapter) ─▶ evidence(name, answers)

    `trainprove audit`, `check`, `plan`, `generate`, the fleet, the demo and the benchmarks build their
    audits with it, always in a `with` block (leaving it closes the executor it built), and a decision
    test that needs more (extra image sets, reference models) gets it as `Evidence.run` and asks its
    `workspace` for them, cached like the audit's own. Building it checks everything that can be checked
    without work: the executor, every decision test's settings, every suspect's checkpoint and label space
    (`open_suspects`), so bad input fails before any image is made.
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
                self.tests[t.name] = plugins.decision_test(t.test.use).spec.factory(t.test.settings)
            except TrainproveError as exc:
                self.close()
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

    def close_adapters(self) -> None:
        """Close every suspect's adapter this audit opened (a session, a server it started)."""
        for adapter in self.adapters.values():
            if isinstance(adapter, Closable):
                adapter.close()

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

    # ---- checking ---------------------------------------------------------------------------------------

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
                    if suspect.name not in self.adapters:
                        self.adapters[suspect.name] = self._open_suspect(suspect)
            validation = content_key(
                self.workspace.image_set_identity(self.generator, self.config.validation)
            )
        for suspect in self.config.suspects:
            adapter = self.adapters[suspect.name]
            if not self.workspace.has_answers(adapter, validation):
                try:
                    self.workspace.load(adapter)
                except TrainproveError as exc:
                    raise InputError(f"{self.config.source}: [suspect {suspect.name}] {exc}") from None
        return self.adapters

    def _open_suspect(self, suspect: Any) -> SuspectAdapter:
        source, where = self.config.source, f"suspect {suspect.name}"
        try:
            adapter = self.workspace.suspect_adapter(suspect.adapter)
        except Exception as exc:  # noqa: BLE001 - a plugin's fault is reported, not a traceback
            raise table_error(
                exc, source, where, f"opening it with adapter {suspect.adapter.use!r}"
            ) from None
        label_map(self.task, adapter, f"{source}: [{where}] key 'label_names': the model's ")
        return adapter

    def steps(self) -> int:
        """How many progress steps `run_audit` takes (sets, models, answer sets), for a caller's plan:
        its own, and the `reserved_steps` its decision tests will add."""
        return sum(self.step_kinds().values())

    def step_kinds(self) -> dict[str, int]:
        """`steps` by kind (`progress.kind_of`): the shadow and validation sets, the shadow model, its
        answers and each suspect's, the controls' (a set, a model and two answer sets for the negative one,
        one for the positive), and what the decision tests reserve, by the kinds they name."""
        config = self.config
        negative, positive = config.negative_control is not None, config.positive_control is not None
        kinds = {
            "generate": 2 + negative + positive,
            "train": 1 + negative + positive,
            "query": 1 + len(config.suspects) + 2 * negative + positive,
        }
        for name, n in self._reserved().items():
            kinds[name] = kinds.get(name, 0) + n
        return kinds

    def reserved_steps(self) -> int:
        """The progress steps the decision tests say they will add along the way (reference models, their
        sets and answers): each test's optional `progress_steps(config, models)` (`models`: the suspects
        and controls it judges), so the plan is whole before its first step."""
        return sum(self._reserved().values())

    def _reserved(self) -> dict[str, int]:
        models = len(self.config.suspects) + sum(
            c is not None for c in (self.config.negative_control, self.config.positive_control)
        )
        kinds: dict[str, int] = {}
        for test in self.tests.values():
            if isinstance(test, ReservesSteps):
                steps = test.progress_steps(self.config, models)
                by_kind = steps if isinstance(steps, Mapping) else {progress.OTHER: steps}
                for kind, n in by_kind.items():
                    kinds[kind] = kinds.get(kind, 0) + max(0, int(n))
        return kinds

    def workload(self) -> list[str]:
        """What this audit does, stated before any work (`trainprove check`, `trainprove plan`): every image
        set it makes, every model it trains, and every image each suspect answers, the decision tests' own
        (`Plans`) included. A sequential audit may stop asking early; these are the most it asks."""
        config, classes = self.config, self.config.task.num_classes
        images = [f"{table} {n:,}" for table, n, _ in image_sets(config)]
        models = ["the shadow"]
        models += ["the negative control"] if config.negative_control is not None else []
        models += ["the positive control"] if config.positive_control is not None else []
        per_suspect = config.validation.per_class * classes
        asks = [f"{per_suspect:,} validation images"]
        shared: list[str] = []
        notes: list[str] = []
        for name, test in self.tests.items():
            if not isinstance(test, Plans):
                continue
            w = test.workload(config)
            if w.images:
                images.append(f"{name}: {w.images:,}" + (f" ({w.what})" if w.what else ""))
            if w.models:
                models.append(f"{name}: {w.models} reference model(s)")
            if w.queries_per_suspect:
                asks.append(f"{name}: {w.queries_per_suspect:,} more")
                per_suspect += w.queries_per_suspect
            if w.shared:
                shared.append(f"{name}: {w.shared}")
            # a note that starts with spaces continues the one before it (a table's rows)
            notes += [note if note.startswith("  ") else f"{name}: {note}" for note in w.notes]
        lines = [
            "images made: " + "; ".join(images),
            "models trained: " + "; ".join(models),
            f"each suspect answers {per_suspect:,} images"
            + (f" ({'; '.join(asks)})" if len(asks) > 1 else "")
            + (
                ", at most: a sequential audit stops once every test decided"
                if config.validation.rounds > 1
                else ""
            ),
        ]
        return lines + [f"shared with other audits: {s}" for s in shared] + notes

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

    @property
    def shadow_answers_key(self) -> str:
        return self._shadow_answers[1]

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
            # The slices not yet answered are asked in one batch (one progress step; at once where the
            # executor runs work in parallel), each still cached and counted on its own.
            parts = self.workspace.answers_all(
                [(name, adapter, rounds.slice_set(image_set, look.rounds, r)) for r in range(look.round)]
            )
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
