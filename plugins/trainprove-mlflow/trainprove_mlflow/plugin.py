"""Entry point: log every audit to MLflow through the lifecycle hooks (`trainprove_before_audit` checks
the tracking store before any work, `trainprove_after_audit` logs the finished audit).

Imported whenever trainprove starts, so it imports nothing heavy: mlflow (seconds to import) loads only
where logging is on (`tracking.enabled`: `MLFLOW_TRACKING_URI` set, or an MLflow run active in the
process).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from trainprove_core import hookimpl

from . import tracking

_targets: dict[str, Any] = {}  # out_dir -> its checked tracking.Target (None: refused), between the hooks


@hookimpl
def trainprove_before_audit(config: Any, out_dir: Path) -> None:
    """Open the tracking store and the experiment now, so a wrong URI is said before the audit's work
    (the core reports it in the report's errors, once, and the audit goes on unlogged)."""
    if tracking.enabled():
        _targets[str(out_dir)] = None
        _targets[str(out_dir)] = tracking.Target()


@hookimpl
def trainprove_after_audit(report: dict, out_dir: Path) -> None:
    """Log the audit as one MLflow run."""
    if str(out_dir) in _targets:
        target = _targets.pop(str(out_dir))
        if target is None:
            return  # refused before the audit, and said so
    elif tracking.enabled():
        target = tracking.Target()
    else:
        return
    run_id = target.log(report, Path(out_dir))
    experiment = f" of experiment {target.experiment!r}" if target.experiment else ""
    print(
        f"mlflow: logged the audit as run {run_id}{experiment} at {tracking.shown_uri(target.uri)}",
        file=sys.stderr,
    )
