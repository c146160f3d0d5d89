"""The workspace: one object over the engine's layers, what decision tests and commands hold.

jobs (executor, store, accounts) ◀─ images ◀─ models ◀─ answers ◀─ Workspace
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plugins import PluginSet
from ..store import Store
from ..task import Task
from .jobs import open_executor
from .references import ReferenceModels


class Workspace(ReferenceModels):
    """The cached building blocks of audits: image sets, shadow models, answers.

    Decision tests reach it as `Evidence.run.workspace` to ask for more (image sets from other generators,
    reference models), cached like the audit's own. Everything expensive is cut into `Work` items that
    name the model they need (a `ModelRef`: the plugin and its settings, so a worker builds the model
    itself) and run by the workspace's executor; each result is written to the store here, on the driver,
    as it arrives, and its counts (queries, images, seconds) are added up here too (`queries_sent`,
    `work_done`). A workspace is a context manager: leaving it closes the executor.

    Its methods come from one layer each: `Jobs` (running work, `trainprove_core.engine.jobs`),
    `ImageSets` (`image_set`), `Models` (`generator`, `suspect_adapter`, `trainer`, `shadow_models`) and
    `Asking` (`answers`, `answers_many`, `answers_all`, `load`) and `ReferenceModels` (a decision test's
    reference models: `reference_generators`, `seeded_set`, `mixture`, `reference_models`).
    """

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

    def __enter__(self) -> Workspace:
        return self
