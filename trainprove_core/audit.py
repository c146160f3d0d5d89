"""Kept for one release so that `from trainprove_core.audit import ...` keeps working: the engine is
`trainprove_core.engine` now (one module per phase, docs/design.md). Import from there."""

from __future__ import annotations

from .engine import (
    NOT_ANSWERED,
    VERDICTS,
    AuditResult,
    AuditRun,
    WorkDone,
    Workspace,
    apply_controls,
    audit_executor,
    image_requests,
    open_executor,
    preview_sheet,
    resize_to_task,
    run_audit,
    validation_batches,
)
from .records import ImageSet

__all__ = [
    "NOT_ANSWERED",
    "VERDICTS",
    "AuditResult",
    "AuditRun",
    "ImageSet",
    "WorkDone",
    "Workspace",
    "apply_controls",
    "audit_executor",
    "image_requests",
    "open_executor",
    "preview_sheet",
    "resize_to_task",
    "run_audit",
    "validation_batches",
]
