"""The engine: how one audit runs, as a one-way stack of one module per phase.

    jobs       work items through the executor into the store, accounted (`Jobs`, `open_executor`)
    images     image sets: requests, seeds, chunks (`ImageSets`, `image_requests`, `validation_batches`)
    models     plugins built from their tables, trained models (`Models`)
    answers    models' answers in the task's label space, the budget (`Asking`, `label_map`)
    references a decision test's reference models: sources, seeded sets, training, answers
    workspace  `Workspace`: the facade over those four, what decision tests and commands hold
    run        `AuditRun`: one audit's checking and cached stages (what `Evidence.run` is)
    verdicts   the fixed design's judging, the verdict cache, controls
    sequential the one definition of a sequential audit, and its judging
    report     report.json, built in one place
    audit      `run_audit`: the steps, in order

Each module imports only those above it in this list.
"""

from __future__ import annotations

from ..executors import resize_to_task
from .answers import NOT_ANSWERED, label_map
from .audit import AuditResult, run_audit
from .images import image_requests, preview_sheet, validation_batches
from .jobs import WorkDone, audit_executor, open_executor
from .references import ReferenceModel, TrainedReference
from .report import AuditReport, build_report
from .run import AuditRun
from .verdicts import VERDICTS, apply_controls
from .workspace import Workspace

__all__ = [
    "NOT_ANSWERED",
    "VERDICTS",
    "AuditReport",
    "AuditResult",
    "AuditRun",
    "ReferenceModel",
    "TrainedReference",
    "WorkDone",
    "Workspace",
    "apply_controls",
    "audit_executor",
    "build_report",
    "image_requests",
    "label_map",
    "open_executor",
    "preview_sheet",
    "resize_to_task",
    "run_audit",
    "validation_batches",
]
