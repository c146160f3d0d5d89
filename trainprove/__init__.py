"""trainprove for notebooks and pipelines: `import trainprove; report = trainprove.audit("audit.toml")`.

The functions are `trainprove_core.api`'s (docs/python-api.md); importing this package imports nothing
heavy, as `trainprove --help` must not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainprove_core.api import audit, check, load_report
    from trainprove_core.engine import AuditReport

__all__ = ["AuditReport", "audit", "check", "load_report"]


def __getattr__(name: str) -> Any:
    if name in ("audit", "check", "load_report"):
        return getattr(importlib.import_module("trainprove_core.api"), name)
    if name == "AuditReport":
        return importlib.import_module("trainprove_core.engine").AuditReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
