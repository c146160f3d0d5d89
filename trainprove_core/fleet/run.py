"""Running a fleet: every suspect opened first, then each audit on a shared executor (`run_fleet`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import progress
from ..plugins import PluginSet
from ..records import Executor
from ..store import Store, canonical_json
from .attribution import attribute
from .render import toml_dumps, write_attribution
from .spec import ACCUSED, CLEARED, UNSURE, Fleet, FleetAudit, FleetResult

if TYPE_CHECKING:
    from ..engine import AuditReport


# ---- running it -----------------------------------------------------------------------------------------


def check_suspects(fleet: Fleet, plugins: PluginSet, store: Store) -> None:
    """Open every suspect once (checkpoint read, label space mapped) before any work, so a bad one stops
    the fleet before its first audit, not halfway through."""
    from ..engine import AuditRun
    from ..executors import LocalExecutor

    opened: set[tuple[str, str]] = set()
    for audit in fleet.audits:
        assert audit.config is not None
        fresh = [s for s in audit.config.suspects if (audit.task, s.name) not in opened]
        if not fresh:
            continue
        # Opening suspects runs no work: the local executor, not the audit's (no cluster started here).
        config = dataclasses.replace(audit.config, suspects=fresh)
        with AuditRun(config, plugins, store, show_progress=False, executor=LocalExecutor()) as run:
            run.open_suspects()
            run.close_adapters()
        opened |= {(audit.task, s.name) for s in fresh}


def run_fleet(
    fleet: Fleet,
    plugins: PluginSet,
    out_dir: str | Path,
    store: Store,
    show_progress: bool = True,
    html: bool = True,
    echo: Callable[[str], None] | None = None,
    started: float | None = None,
    executor: Executor | None = None,
) -> FleetResult:
    """Run every audit of `fleet` (each writes its report under `out_dir`), attribute every suspect,
    write attribution.md, attribution.json and index.html; return the result. `echo` gets one line per
    audit as it ends (the seconds since `started`).

    Audits whose `[executor]` tables are the same share one executor (one Ray cluster, whose workers
    keep their models built from one audit to the next), closed when the fleet ends, on errors too; an
    `executor` passed in runs every audit and is left open."""
    from ..engine import audit_executor, run_audit

    started = started or time.time()
    echo = echo or (lambda line: None)
    out_dir = Path(out_dir)
    reports: dict[tuple[str, str], AuditReport] = {}
    errors: list[str] = []
    opened: dict[str, Executor] = {}  # by the audit's [executor] table
    # One plan: this first step, then each audit adds its own as it starts.
    try:
        with progress.plan(1, f"fleet {Path(fleet.source).name}", show_progress):
            with progress.step("open every suspect", enabled=show_progress):
                check_suspects(fleet, plugins, store)
            out_dir.mkdir(parents=True, exist_ok=True)
            for audit in fleet.audits:
                assert audit.config is not None
                audit_dir = out_dir / audit.path
                audit_dir.mkdir(parents=True, exist_ok=True)
                (audit_dir / "audit.toml").write_text(toml_dumps(audit.config.public_document()), "utf-8")
                runs_on = executor
                if runs_on is None:
                    table = audit.config.executor
                    key = canonical_json([table.use, table.settings])
                    if key not in opened:
                        opened[key] = audit_executor(audit.config, plugins)
                    runs_on = opened[key]
                result = run_audit(
                    audit.config, plugins, audit_dir, store, show_progress, html=html, executor=runs_on
                )
                reports[(audit.task, audit.generator)] = result.report
                errors += [f"{audit.path}: {e}" for e in result.errors]
                echo(_audit_line(audit, result.report, time.time() - started))
    finally:
        for opened_executor in opened.values():
            opened_executor.close()  # part of the Executor protocol
    attribution = attribute(fleet, reports)
    write_attribution(attribution, out_dir)
    return FleetResult(fleet, out_dir, reports, attribution, errors)


def _audit_line(audit: FleetAudit, report: AuditReport, seconds: float) -> str:
    verdicts = report.verdicts
    who = f"{audit.generator} on {audit.task}" if audit.task else audit.generator
    if verdicts and all(v["truth"] is not None for v in verdicts):
        said = f"{sum(bool(v['correct']) for v in verdicts)}/{len(verdicts)} verdicts right"
    else:
        count = {d: sum(v["decision"] == d for v in verdicts) for d in (ACCUSED, CLEARED, UNSURE)}
        said = f"{count[ACCUSED]} accused, {count[CLEARED]} cleared, {count[UNSURE]} inconclusive"
    errors = f", {len(report.errors)} errors" if report.errors else ""
    return f"  defender {who:<12} {said}{errors} ({seconds:.0f} s)"
