"""index.html: one page across several audits of the same suspects (the demo's defenders, a folder of
runs), each cell linked to the verdict's details in its audit's report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_text
from .page import cell_text, environment
from .reading import as_report, records
from .words import CELL_CLASS, INCONCLUSIVE, NOT_TRAINED, SHORT, TRAINED, seconds

if TYPE_CHECKING:
    from ..engine.report import AuditReport

DECIDED = {"trained": TRAINED, "not_trained": NOT_TRAINED, "inconclusive": INCONCLUSIVE}
"""The page's count of each decision."""


GROUPED = (
    "Each row is the group of suspects (the source they were trained on), each column an audit (its "
    "generator the defender); k/n: k of the group's n suspects judged trained on that generator, (m?): m "
    "judged inconclusive."
)
BY_SUSPECT = (
    "Each row is a suspect, each column an audit (its generator the defender); each cell is the test's "
    "decision and links to its details in that audit's report; ✓ / ✗: right / wrong where the truth is "
    "known."
)

Found = dict[tuple[int, Any, str], tuple[int, Mapping[str, Any]]]
"""(audit index, test, suspect) -> (the verdict's index in its report, the verdict)."""


def _audit_row(name: str, href: str, report: AuditReport) -> dict[str, Any]:
    verdicts = records(report.verdicts)
    counts = {d: sum(1 for v in verdicts if v.get("decision") == d) for d in SHORT}
    return {
        "name": name,
        "href": href,
        "generator": str(report.generator.get("use", "?")),
        "suspects": len(report.suspects),
        "trained": counts[TRAINED],
        "not_trained": counts[NOT_TRAINED],
        "inconclusive": counts[INCONCLUSIVE],
        "warnings": len(report.warnings),
        "errors": len(report.errors),
        "wall": seconds(report.wall_seconds),
    }


def _group_cells(found: Found, n_audits: int, test: Any, members: Sequence[str]) -> list[Any]:
    """Per audit, how many of the group's suspects were judged trained (k/n, m? inconclusive)."""
    cells: list[Any] = []
    for a in range(n_audits):
        hits = [found[(a, test, s)][1] for s in members if (a, test, s) in found]
        if not hits:
            cells.append(None)
            continue
        flagged = sum(1 for v in hits if v.get("decision") == TRAINED)
        unsure = sum(1 for v in hits if v.get("decision") == INCONCLUSIVE)
        majority = max(SHORT, key=lambda d: sum(1 for v in hits if v.get("decision") == d))
        text = f"{flagged}/{len(hits)}" + (f" ({unsure}?)" if unsure else "")
        cells.append({"cls": CELL_CLASS[majority], "text": text, "href": None, "wrong": False})
    return cells


def _suspect_cells(found: Found, hrefs: Sequence[str], test: Any, suspect: str) -> list[Any]:
    """Per audit, the test's decision on the suspect, linked to its details."""
    cells: list[Any] = []
    for a, href in enumerate(hrefs):
        hit = found.get((a, test, suspect))
        if hit is None:
            cells.append(None)
            continue
        i, v = hit
        cells.append(
            {
                "cls": CELL_CLASS.get(v.get("decision"), ""),
                "text": cell_text(v),
                "href": f"{href}#v{i}",
                "wrong": v.get("correct") is False,
            }
        )
    return cells


def index_view(
    audits: Sequence[tuple[str, str, AuditReport | Mapping[str, Any]]],
    groups: Mapping[str, str] | None = None,
    title: str = "trainprove audits",
) -> dict[str, Any]:
    """What index.html.j2 shows of several audits: `audits` lists (name, href of its report.html, its
    report: an `AuditReport` or report.json's document). Per test, a matrix of suspects × audits (each
    cell the decision, linked to its details), or, with `groups` (suspect name → its group, e.g. the
    source it was trained on), the attribution matrix: per group and audit, how many of the group's
    suspects were judged trained (k/n, and m? for inconclusive)."""
    reports = [(name, href, as_report(report)) for name, href, report in audits]
    tests: list[Any] = []
    suspects: list[str] = []
    found: Found = {}
    for a, (_, _, report) in enumerate(reports):
        for i, v in enumerate(records(report.verdicts)):
            found[(a, v.get("test"), str(v.get("suspect")))] = (i, v)
            if v.get("test") not in tests:
                tests.append(v.get("test"))
            if str(v.get("suspect")) not in suspects:
                suspects.append(str(v.get("suspect")))
        suspects += [n for n in (str(s.get("name")) for s in records(report.suspects)) if n not in suspects]
    every = [v for _, _, report in reports for v in records(report.verdicts)]
    decided = {key: sum(1 for v in every if v.get("decision") == d) for key, d in DECIDED.items()}
    judged = [v for v in every if v.get("correct") is not None]
    matrices = []
    for test in tests:
        if groups:
            order = list(dict.fromkeys(groups.get(s, "?") for s in suspects))
            rows = [
                {
                    "label": g,
                    "cells": _group_cells(
                        found, len(reports), test, [s for s in suspects if groups.get(s, "?") == g]
                    ),
                }
                for g in order
            ]
        else:
            hrefs = [href for _, href, _ in reports]
            rows = [{"label": s, "cells": _suspect_cells(found, hrefs, test, s)} for s in suspects]
        matrices.append(
            {
                "test": test,
                "rows_are": "group" if groups else "suspect",
                "rows": rows,
                "explain": GROUPED if groups else BY_SUSPECT,
            }
        )
    return {
        "title": title,
        "audits": [_audit_row(name, href, report) for name, href, report in reports],
        "n_suspects": len(suspects),
        "n_verdicts": sum(decided.values()),
        "decided": decided,
        "has_truth": bool(judged),
        "right": sum(1 for v in judged if v.get("correct") is True),
        "judged": len(judged),
        "matrices": matrices,
    }


def render_index(
    audits: Sequence[tuple[str, str, AuditReport | Mapping[str, Any]]],
    groups: Mapping[str, str] | None = None,
    title: str = "trainprove audits",
) -> str:
    """One self-contained page across several audits (see `index_view`)."""
    return environment().get_template("index.html.j2").render(p=index_view(audits, groups, title))


def write_index(
    out_dir: Path,
    run_dirs: Sequence[Path],
    groups: Mapping[str, str] | None = None,
    title: str = "trainprove audits",
) -> Path:
    """`out_dir/index.html` across the audits whose report.json lie in `run_dirs` (each linked by its
    path relative to `out_dir`); return its path."""
    import os

    out_dir = Path(out_dir)
    audits = []
    for run_dir in run_dirs:
        source = Path(run_dir) / "report.json"
        try:
            report = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            from ..errors import InputError

            raise InputError(
                f"{source}: not a readable report ({exc}); the index was not written. Move that folder "
                "away (or run its audit again), then run this again."
            ) from None
        if not isinstance(report, dict) or not isinstance(report.get("verdicts"), list):
            from ..errors import InputError

            raise InputError(
                f"{source}: not a trainprove report (no `verdicts` list); the index was not written"
            )
        href = Path(os.path.relpath(Path(run_dir) / "report.html", out_dir)).as_posix()
        audits.append((Path(run_dir).name, href, report))
    path = out_dir / "index.html"
    write_text(path, render_index(audits, groups, title))
    return path
