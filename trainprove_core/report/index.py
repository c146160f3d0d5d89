"""index.html: one page across several audits of the same suspects (the demo's defenders, a folder of
runs), each cell linked to the verdict's details in its audit's report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import write_text
from .page import cell_text, environment
from .words import CELL_CLASS, INCONCLUSIVE, NOT_TRAINED, SHORT, TRAINED, seconds


def index_view(
    audits: Sequence[tuple[str, str, Mapping[str, Any]]],
    groups: Mapping[str, str] | None = None,
    title: str = "trainprove audits",
) -> dict[str, Any]:
    """What index.html.j2 shows of several audits: `audits` lists (name, href of its report.html, its
    report dict). Per test, a matrix of suspects × audits (each cell the decision, linked to its details),
    or, with `groups` (suspect name → its group, e.g. the source it was trained on), the attribution
    matrix: per group and audit, how many of the group's suspects were judged trained (k/n, and m? for
    inconclusive)."""
    rows_view, tests, suspects = [], [], []
    decided = {"trained": 0, "not_trained": 0, "inconclusive": 0}
    right = judged = 0
    for name, href, report in audits:
        verdicts = [v for v in report.get("verdicts") or [] if isinstance(v, dict)]
        counts = {d: sum(1 for v in verdicts if v.get("decision") == d) for d in SHORT}
        decided["trained"] += counts[TRAINED]
        decided["not_trained"] += counts[NOT_TRAINED]
        decided["inconclusive"] += counts[INCONCLUSIVE]
        right += sum(1 for v in verdicts if v.get("correct") is True)
        judged += sum(1 for v in verdicts if v.get("correct") is not None)
        for v in verdicts:
            if v.get("test") not in tests:
                tests.append(v.get("test"))
            if str(v.get("suspect")) not in suspects:
                suspects.append(str(v.get("suspect")))
        for s in report.get("suspects") or []:
            if isinstance(s, dict) and str(s.get("name")) not in suspects:
                suspects.append(str(s.get("name")))
        rows_view.append(
            {
                "name": name,
                "href": href,
                "generator": str((report.get("generator") or {}).get("use", "?")),
                "suspects": len(report.get("suspects") or []),
                "trained": counts[TRAINED],
                "not_trained": counts[NOT_TRAINED],
                "inconclusive": counts[INCONCLUSIVE],
                "warnings": len(report.get("warnings") or []),
                "errors": len(report.get("errors") or []),
                "wall": seconds(report.get("wall_seconds")),
            }
        )
    # verdict lookup: (audit index, test, suspect) -> (index in its report, record)
    found: dict[tuple[int, Any, str], tuple[int, Mapping[str, Any]]] = {}
    for a, (_, _, report) in enumerate(audits):
        for i, v in enumerate(v for v in report.get("verdicts") or [] if isinstance(v, dict)):
            found[(a, v.get("test"), str(v.get("suspect")))] = (i, v)
    matrices = []
    for test in tests:
        rows = []
        if groups:
            order = list(dict.fromkeys(groups.get(s, "?") for s in suspects))
            for group in order:
                members = [s for s in suspects if groups.get(s, "?") == group]
                cells = []
                for a in range(len(audits)):
                    hits = [found[(a, test, s)][1] for s in members if (a, test, s) in found]
                    if not hits:
                        cells.append(None)
                        continue
                    flagged = sum(1 for v in hits if v.get("decision") == TRAINED)
                    unsure = sum(1 for v in hits if v.get("decision") == INCONCLUSIVE)
                    majority = max(SHORT, key=lambda d: sum(1 for v in hits if v.get("decision") == d))
                    cells.append(
                        {
                            "cls": CELL_CLASS[majority],
                            "text": f"{flagged}/{len(hits)}" + (f" ({unsure}?)" if unsure else ""),
                            "href": None,
                            "wrong": False,
                        }
                    )
                rows.append({"label": group, "cells": cells})
            explain = (
                "Each row is the group of suspects (the source they were trained on), each column an audit "
                "(its generator the defender); k/n: k of the group's n suspects judged trained on that "
                "generator, (m?): m judged inconclusive."
            )
        else:
            for s in suspects:
                cells = []
                for a, (_, href, _) in enumerate(audits):
                    hit = found.get((a, test, s))
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
                rows.append({"label": s, "cells": cells})
            explain = (
                "Each row is a suspect, each column an audit (its generator the defender); each cell is the "
                "test's decision and links to its details in that audit's report; ✓ / ✗: right / wrong "
                "where the truth is known."
            )
        matrices.append(
            {"test": test, "rows_are": "group" if groups else "suspect", "rows": rows, "explain": explain}
        )
    return {
        "title": title,
        "audits": rows_view,
        "n_suspects": len(suspects),
        "n_verdicts": sum(decided.values()),
        "decided": decided,
        "has_truth": judged > 0,
        "right": right,
        "judged": judged,
        "matrices": matrices,
    }


def render_index(
    audits: Sequence[tuple[str, str, Mapping[str, Any]]],
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
