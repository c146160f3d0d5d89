"""Models: the plugins an audit uses, built from their tables, and models trained on image sets.

Every model the workspace builds is remembered with its `ModelRef` (the plugin and its settings), so a
worker builds its own. Trained models are directories in the store, trained once per (trainer, image set).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import identity_cache, progress
from ..accounting import phase
from ..config import PluginTable, check_plugin_settings, validate_table
from ..errors import TrainproveError
from ..executors import write_files
from ..records import Generator, ImageSet, ModelRef, ShadowTrainer, SuspectAdapter, Work, runs_at_once
from ..store import content_key
from .images import ImageSets
from .jobs import raise_error

TrainedModel = tuple[Path, Any, str]
"""A trained model: its directory in the store, the trainer that opens it, and its key."""


class Models(ImageSets):
    """Plugins built from their tables, and trained models (a layer of `Workspace`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        check_plugin_settings(registered, validated, source=where or "<workspace>", where=kind)
        return PluginTable(use, validated, dict(validated), registered.distribution, registered.version)

    def generator(self, table: PluginTable) -> Generator:
        """The generator a table selects (built once per audit)."""
        key = content_key({"use": table.use, "settings": table.settings})
        if key not in self._generators:
            spec = self.plugins.generator(table.use).spec
            ref = ModelRef("generator", table.use, dict(table.settings), spec.factory)
            self._generators[key] = self.remember(spec.factory(table.settings), ref)
        return self._generators[key]

    def suspect_adapter(self, table: PluginTable) -> SuspectAdapter:
        """The suspect adapter a `[[suspect]]` table selects, built for the task (a worker builds its own
        from the same table)."""
        spec = self.plugins.suspect_adapter(table.use).spec
        ref = ModelRef("suspect", table.use, dict(table.settings), spec.factory, self.task)
        return self.remember(spec.factory(table.settings, self.task), ref)

    def trainer(self, table: PluginTable) -> ShadowTrainer:
        """The shadow trainer a table selects (a worker builds its own from the same table)."""
        spec = self.plugins.shadow_trainer(table.use).spec
        ref = ModelRef("shadow-trainer", table.use, dict(table.settings), spec.factory)
        return self.remember(spec.factory(table.settings), ref)

    # ---- training ---------------------------------------------------------------------------------------

    def trained_model(self, table: PluginTable, image_set: ImageSet) -> TrainedModel:
        """The directory of a model trained on `image_set` by the trainer `table` selects (trained now
        unless the store has it), the trainer, and the model's key."""
        return raise_error(self.trained_models([(table, image_set)])[0])

    @phase("training")
    def trained_models(
        self, pairs: Sequence[tuple[PluginTable, ImageSet]]
    ) -> list[TrainedModel | TrainproveError]:
        """`trained_model` for several (trainer table, image set) pairs, trained at once where the executor
        runs work in parallel; a training that fails gives its `TrainproveError` in its place."""
        jobs = []
        for table, image_set in pairs:
            trainer = self.trainer(table)
            identity = {
                "kind": "model",
                "trainer": dict(trainer.identity),
                "image_set": image_set.key,
                "classes": list(self.task.classes),
            }
            jobs.append((trainer, identity, image_set))
        pending = [j for j in jobs if self.store.finished("models", j[1]) is None]  # missing or damaged
        for _ in range(len(jobs) - len(pending)):
            progress.skip("train")
        self.accounts.add("models_cached", len(jobs) - len(pending))
        self.accounts.add("models_trained", len(pending))
        dirs = self._train(pending)
        out: list[TrainedModel | TrainproveError] = []
        for job in jobs:
            trainer, identity, _ = job
            where = dirs.get(id(job), self.store.location("models", identity))
            out.append(
                where if isinstance(where, TrainproveError) else (where, trainer, content_key(identity))
            )
        return out

    def _train(self, pending: list[tuple[Any, Mapping[str, Any], ImageSet]]) -> dict[int, Any]:
        """Train the models of `pending` (trainer, identity, image set), at once where the executor runs
        work in parallel: each one's directory (or error), by the id of its entry."""
        if len(pending) > 1 and runs_at_once(self.executor, "train"):
            with progress.step(f"train {len(pending)} models", enabled=self.show_progress):
                for _ in range(len(pending) - 1):
                    progress.skip("train")
                with ThreadPoolExecutor(len(pending), thread_name_prefix="trainprove-train") as pool:
                    made = pool.map(self._train_one, pending)
                    return dict(zip((id(j) for j in pending), made, strict=True))
        dirs = {}
        for job in pending:
            with progress.step(f"train model on {job[2].role} set", enabled=self.show_progress):
                dirs[id(job)] = self._train_one(job)
        return dirs

    def _train_one(self, job: tuple[Any, Mapping[str, Any], ImageSet]) -> Path | TrainproveError:
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

    def open_model(self, table: PluginTable, model_dir: Path, trainer: Any) -> SuspectAdapter:
        """A trained model opened for queries by its trainer (a worker opens its own from the same
        directory)."""
        spec = self.plugins.shadow_trainer(table.use).spec
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
        made = [raise_error(m) for m in self.trained_models(pairs)]
        with identity_cache.using(self.store.root / identity_cache.KIND):
            return [
                (self.open_model(table, d, trainer), key)
                for (table, _), (d, trainer, key) in zip(pairs, made, strict=True)
            ]
