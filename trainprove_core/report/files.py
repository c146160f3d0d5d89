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


def write_html(report: AuditReport | Mapping[str, Any], out_dir: Path) -> Path:
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
        page = render_html(report) if html else None
    else:
        with accounts.phase("report"):
            page = render_html(report) if html else None
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


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""The headless browsers that print report.pdf, the first found on PATH."""

NO_BROWSER = (
    "report.pdf needs a headless Chromium on PATH (one of: {names}; `apt-get install chromium`), and none "
    "is installed; report.html is written: open it in a browser and print it (every detail opens in print)"
)


def browser() -> str | None:
    """The first of `BROWSERS` on PATH, or None."""
    import shutil

    return next((b for b in BROWSERS if shutil.which(b)), None)


def print_pdf(page: str, pdf: Path, timeout: float = 180.0) -> Path:
    """Print the HTML `page` to `pdf` with a headless Chromium (A4, no header or footer); return `pdf`.
    No Chromium, or one that fails, is one `InputError` line; a file half-printed is never left."""
    import os
    import subprocess
    import tempfile

    from ..errors import InputError

    chromium = browser()
    if chromium is None:
        raise InputError(NO_BROWSER.format(names=", ".join(BROWSERS)))
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trainprove-print-") as tmp:
        source, printed = Path(tmp) / "print.html", Path(tmp) / "report.pdf"
        source.write_text(page, encoding="utf-8")
        command = [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            "--virtual-time-budget=3000",
            f"--print-to-pdf={printed}",
            source.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # Chromium refuses its sandbox to root
            command.insert(2, "--no-sandbox")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"{pdf}: {chromium} did not print within {timeout:.0f} s; not written") from None
        if done.returncode != 0 or not printed.is_file() or printed.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(f"{pdf}: {chromium} could not print it (exit {done.returncode}: {last})")
        part = pdf.with_name(pdf.name + ".part")
        try:
            part.write_bytes(printed.read_bytes())
            os.replace(part, pdf)
        except OSError as exc:
            part.unlink(missing_ok=True)
            from ..store import cannot_write

            error = cannot_write(pdf, exc, "report.json and report.html are kept.")
            if error is None:
                raise
            raise error from None
    return pdf


def write_pdf(report: AuditReport | Mapping[str, Any], out_dir: Path) -> Path:
    """`out_dir/report.pdf`: the report printed with every detail open and every chart (see `print_pdf`)."""
    return print_pdf(render_html(report, printing=True), Path(out_dir) / "report.pdf")
