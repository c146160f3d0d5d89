"""Writing the report's files: report.json, report.html, index.html, and report.pdf through a headless
Chromium. A full disk or a missing permission is one error naming the path, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..accounting import Accounts
from .page import render_html

if TYPE_CHECKING:
    from ..engine.report import AuditReport

REPORT_KEPT = (
    "Every image set, model and answer is kept in the store: free space (or give --out another folder) "
    "and run the same command again, which makes nothing again but the report."
)


def write_text(path: Path, text: str) -> None:
    """Write a report file; a full disk, a quota, a read-only folder or a missing permission is one
    error naming the path (`trainprove_core.store.CannotWrite`), never a traceback."""
    from ..store import cannot_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        error = cannot_write(path, exc, REPORT_KEPT)
        if error is None:
            raise
        raise error from None


def write_html(report: Mapping[str, Any], out_dir: Path) -> Path:
    """Render `report` to `out_dir/report.html`; return its path."""
    path = Path(out_dir) / "report.html"
    write_text(path, render_html(report))
    return path


def write_report(
    report: AuditReport | dict[str, Any], out_dir: Path, html: bool = True, accounts: Accounts | None = None
) -> tuple[Path, Path | None]:
    """Write `report.json` and then `report.html` (unless `html` is false) into `out_dir`; return their
    paths. report.json goes first: a disk that fills up keeps the report (the page can be rendered from
    it later, `trainprove report DIR`).

    `report` is an `AuditReport` (or report.json's document). With the audit's `accounts`, the time spent
    here is charged to `timings.report`, and `timings`, `counts` and `wall_seconds` (the whole audit,
    report included) are set before `report.json` is written (the page, rendered first, shows the time up
    to the report).
    """
    from ..engine.report import AuditReport

    out_dir = Path(out_dir)
    doc = report.to_json() if isinstance(report, AuditReport) else report
    if accounts is None:
        page = render_html(doc) if html else None
    else:
        with accounts.phase("report"):
            page = render_html(doc) if html else None
        spent = {"timings": accounts.timings(), "counts": dict(accounts.counts)}
        spent["wall_seconds"] = round(accounts.total(), 2)
        for key, value in spent.items():
            doc[key] = value
            if isinstance(report, AuditReport):
                setattr(report, key, value)
    json_path = out_dir / "report.json"
    write_text(json_path, json.dumps(doc, indent=2, default=str))
    html_path = None
    if page is not None:
        html_path = out_dir / "report.html"
        write_text(html_path, page)
    return json_path, html_path
