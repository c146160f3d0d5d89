"""report.html: the view of one audit's report (`page_view`) and its rendering (`render_html`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..accounting import COUNTS, PHASES
from .chart import verdict_svg
from .finding import finding_view
from .reading import as_report, flatten, records
from .words import CELL_CLASS, INCONCLUSIVE, NOT_TRAINED, SHORT, TRAINED, finite, fmt, fmt_p, seconds

if TYPE_CHECKING:
    from ..engine.report import AuditReport

OPEN_DETAILS_UP_TO = 12
"""Reports with at most this many verdicts show every verdict's details open."""

TEMPLATES = Path(__file__).parent.parent / "templates"
"""report.html.j2 (one audit), index.html.j2 (several), their parts, style and script."""


@lru_cache(maxsize=1)
def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=False,
        undefined=jinja2.StrictUndefined,
    )


def _safe(html: str) -> Any:
    """Markup report.py built itself (its charts), which the template must not escape again."""
    from markupsafe import Markup

    return Markup(html)


def cell_text(v: Mapping[str, Any]) -> str:
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    if details.get("declined"):
        text = "declined"
    elif details.get("overruled"):
        text = "inconclusive*"
    else:
        text = SHORT.get(v.get("decision"), str(v.get("decision")))
    correct = v.get("correct")
    return text + ("" if correct is None else (" ✓" if correct else " ✗"))


def _row(
    label: str,
    accuracy: str,
    truth: Any,
    cells: Mapping[str, tuple[int, Mapping[str, Any]]],
    tests: Sequence[str],
    note: str = "",
) -> dict[str, Any]:
    out = []
    for test in tests:
        hit = cells.get(test)
        if hit is None:
            out.append(None)
            continue
        i, v = hit
        out.append(
            {
                "index": i,
                "cls": CELL_CLASS.get(v.get("decision"), ""),
                "wrong": v.get("correct") is False,
                "text": cell_text(v),
            }
        )
    return {
        "label": label,
        "accuracy": accuracy,
        "truth": SHORT.get(truth, truth) if truth else "—",
        "note": note,
        "cells": out,
    }


def _controls_of(report: AuditReport) -> list[tuple[str, str, dict[str, Any]]]:
    controls = []
    for key, title, c in (
        ("negative_control", "Negative control", report.negative_control),
        ("positive_control", "Positive control", report.positive_control),
    ):
        if isinstance(c, dict):
            controls.append((key, title, {**c, "verdicts": records(c.get("verdicts"))}))
    return controls


EXPECTED = {"negative_control": NOT_TRAINED, "positive_control": TRAINED}
"""What each control must come out as."""


def _per_test(
    tests: Sequence[Any], verdicts: Sequence[Mapping[str, Any]], controls: Sequence[tuple[str, str, dict]]
) -> list[dict[str, Any]]:
    """Per test: how many suspects it judged trained, not trained, inconclusive (declined), how many of
    those with a known truth it got right, and whether each control passed."""
    control_decisions: dict[Any, list[dict[str, Any]]] = {}
    for key, title, control in controls:
        for v in control["verdicts"]:
            control_decisions.setdefault(v.get("test"), []).append(
                {"kind": title.split()[0].lower(), "ok": v.get("decision") == EXPECTED[key]}
            )
    per_test = []
    for test in tests:
        mine = [v for v in verdicts if v.get("test") == test]
        judged = [v for v in mine if v.get("correct") is not None]
        per_test.append(
            {
                "test": test,
                "trained": sum(1 for v in mine if v.get("decision") == TRAINED),
                "not_trained": sum(1 for v in mine if v.get("decision") == NOT_TRAINED),
                "inconclusive": sum(1 for v in mine if v.get("decision") == INCONCLUSIVE),
                "declined": sum(
                    1 for v in mine if isinstance(v.get("details"), dict) and v["details"].get("declined")
                ),
                "judged": len(judged),
                "right": sum(1 for v in judged if v.get("correct")),
                "controls": control_decisions.get(test, []),
            }
        )
    return per_test


Entries = Sequence[tuple[str, Mapping[str, Any]]]
"""Every verdict on the page, in its order (the audit's, then the controls'), with its group."""


def _matrix(
    entries: Entries,
    suspects: Sequence[Mapping[str, Any]],
    controls: Sequence[tuple[str, str, dict]],
    tests: Sequence[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The suspect × test matrix: its rows (every suspect, judged or not), and the controls' rows."""
    by_suspect: dict[str, dict[Any, tuple[int, Mapping[str, Any]]]] = {}
    for i, (_, v) in enumerate(entries):
        by_suspect.setdefault(str(v.get("suspect")), {})[v.get("test")] = (i, v)
    control_names = {str(v.get("suspect")) for _, _, c in controls for v in c["verdicts"]}
    rows, listed = [], set()
    for s in suspects:
        name = str(s.get("name"))
        listed.add(name)
        note = "" if name in by_suspect else str(s.get("error") or "no verdict")
        rows.append(_row(name, fmt(s.get("accuracy")), s.get("truth"), by_suspect.get(name, {}), tests, note))
    for name, cells in by_suspect.items():  # verdicts of suspects the report does not list, if any
        if name not in listed and name not in control_names:
            rows.append(_row(name, "—", next(iter(cells.values()))[1].get("truth"), cells, tests))
    control_rows = []
    for _, _, control in controls:
        for name in dict.fromkeys(str(v.get("suspect")) for v in control["verdicts"]):
            cells = by_suspect.get(name, {})
            truth = next(iter(cells.values()))[1].get("truth") if cells else None
            control_rows.append(_row(name, "—", truth, cells, tests))

    return rows, control_rows


def page_view(doc: AuditReport | Mapping[str, Any], printing: bool = False) -> dict[str, Any]:
    """What report.html.j2 shows of an `AuditReport` (or report.json's document, any older layout too);
    `printing`: every detail open (the copy `trainprove report --pdf` prints)."""
    report = as_report(doc)
    verdicts = records(report.verdicts)
    suspects = records(report.suspects)
    warnings = [str(w) for w in report.warnings]
    errors = [str(e) for e in report.errors]
    controls = _controls_of(report)
    # Every verdict on the page has an index: the audit's first, then the controls'.
    entries: list[tuple[str, Mapping[str, Any]]] = [("suspect", v) for v in verdicts]
    for key, _, control in controls:
        entries += [(key, v) for v in control["verdicts"]]
    tests: list[str] = []
    for _, v in entries:
        if v.get("test") not in tests:
            tests.append(v.get("test"))
    accuracy = {s.get("name"): s.get("accuracy") for s in suspects}

    decided = {
        key: sum(1 for v in verdicts if v.get("decision") == d)
        for key, d in (("trained", TRAINED), ("not_trained", NOT_TRAINED), ("inconclusive", INCONCLUSIVE))
    }
    has_truth = any(v.get("correct") is not None for v in verdicts)
    per_test = _per_test(tests, verdicts, controls)

    rows, control_rows = _matrix(entries, suspects, controls, tests)

    # Per verdict.
    shadow_accuracy = finite(report.shadow.get("validation_accuracy"))
    is_open = printing or len(entries) <= OPEN_DETAILS_UP_TO
    details, current = [], None
    template = environment().get_template("parts.html.j2").module
    for i, (group, v) in enumerate(entries):
        name = str(v.get("suspect"))
        heading = name if name != current else None
        current = name
        view = _verdict_view(
            i, v, accuracy.get(name) if group == "suspect" else None, shadow_accuracy, is_open
        )
        details.append({"heading": heading, "html": template.verdict(view)})

    time_spent, wall = _time_spent(report)
    return {
        "generator": str(report.generator.get("use", "?")),
        "finding": finding_view(report),
        "printing": printing,
        "n_suspects": len(suspects),
        "n_tests": len({v.get("test") for v in verdicts}),
        "n_verdicts": len(verdicts),
        "decided": decided,
        "n_warnings": len(warnings),
        "n_errors": len(errors),
        "per_test": per_test,
        "has_truth": has_truth,
        "controls": [
            {
                "key": key,
                "title": title,
                "source": str(control.get("source" if key == "negative_control" else "trainer", "?")),
                "rows": [
                    {
                        "test": v.get("test"),
                        "decision": v.get("decision"),
                        "ok": v.get("decision") == EXPECTED[key],
                        "statistic": fmt(v.get("statistic"), 2),
                        "threshold": fmt(v.get("threshold"), 2),
                        "explanation": v.get("explanation", ""),
                    }
                    for v in control["verdicts"]
                ],
            }
            for key, title, control in controls
        ],
        "facts": _facts(report),
        "time": time_spent,
        "wall": wall,
        "work": _work(report),
        "tests": tests,
        "rows": rows,
        "control_rows": control_rows,
        "warnings": warnings,
        "errors": errors,
        "details": details,
        "manifest": _manifest(report.manifest),
    }


def render_html(report: AuditReport | Mapping[str, Any], printing: bool = False) -> str:
    """The human report (see the package's docstring) of an audit's report (or report.json's document)."""
    return environment().get_template("report.html.j2").render(p=page_view(report, printing))


def _manifest(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest as tables: one per part (the audit file, seeds, plugins, hashes...), rows of
    (dotted key, value)."""
    return [
        {"title": str(key).replace("_", " "), "rows": [(k or str(key), str(v)) for k, v in flatten(value)]}
        for key, value in manifest.items()
    ]


def _facts(report: AuditReport) -> list[str]:
    task, shadow, validation = report.task, report.shadow, report.validation
    facts = []
    if task:
        facts.append(f"task: {len(task.get('classes') or [])} classes, {fmt(task.get('image_size'))} px")
    if shadow:
        facts.append(
            f"shadow set {fmt(shadow.get('images'))} images, shadow accuracy "
            f"{fmt(shadow.get('validation_accuracy'))}"
        )
    if validation:
        facts.append(
            f"validation set {fmt(validation.get('images'))} images in "
            f"{fmt(validation.get('batches'))} batches"
        )
    if report.created:
        facts.append(f"created {report.created} by trainprove {report.trainprove_version or '?'}")
    return facts


def _time_spent(report: AuditReport) -> tuple[list[tuple[str, str]], str]:
    """The phases of `timings` with their time (older layouts: a stage's per-suspect dict is summed),
    and the wall time; nothing where the report has neither."""
    timings = report.timings
    if not isinstance(timings, dict) and report.wall_seconds is None:
        return [], ""
    timings = timings if isinstance(timings, dict) else {}
    labels = dict(PHASES)
    spent = []
    for key, value in timings.items():
        if isinstance(value, dict):
            value = sum(x for x in (finite(s) for s in value.values()) if x is not None)
        value = finite(value)
        if value is not None and (value > 0 or key in labels):
            spent.append((labels.get(key, str(key).replace("_", " ")), seconds(value)))
    return spent, seconds(report.wall_seconds)


def _work(report: AuditReport) -> list[str]:
    counts = report.counts
    if not counts:
        return []
    return [f"{label} {fmt(counts[key])}" for key, label in COUNTS if key in counts]


def _verdict_view(
    i: int, v: Mapping[str, Any], accuracy: Any, shadow_accuracy: float | None, is_open: bool
) -> dict[str, Any]:
    chart = verdict_svg(v, f"c{i}")
    known = []
    if chart is None:
        if accuracy is not None:
            known.append(f"suspect's accuracy on the validation set {fmt(accuracy)}")
        if shadow_accuracy is not None:
            known.append(f"shadow's {fmt(shadow_accuracy)}")
        for key, label in (("suspect_value", "suspect value"), ("boundary", "boundary")):
            if v.get(key) is not None:
                known.append(f"{label} {fmt(v.get(key))}")
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    extra = [
        (path, fmt(leaf))
        for k, val in details.items()
        if not isinstance(val, (list, dict)) or len(val) <= 8
        for path, leaf in flatten(val, str(k))
    ]
    plugin, dist = v.get("plugin"), v.get("distribution")
    source = " ".join(str(v.get(k)) for k in ("distribution", "version") if v.get(k))
    if plugin and plugin != dist:
        source = f"{plugin} ({source})" if source else str(plugin)
    return {
        "index": i,
        "open": is_open,
        "cls": CELL_CLASS.get(v.get("decision"), ""),
        "tag": cell_text(v),
        "suspect": v.get("suspect"),
        "test": v.get("test"),
        "correct": v.get("correct"),
        "explanation": v.get("explanation", ""),
        "chart": _safe(chart) if chart is not None else None,
        "known": known,
        "numbers": [
            ("statistic", fmt(v.get("statistic"), 3)),
            ("critical value", fmt(v.get("threshold"), 3)),
            ("p", fmt_p(v.get("p_value"))),
            ("alpha", fmt(v.get("alpha"), 4)),
            ("n", fmt(v.get("n"))),
            ("effect size", fmt(v.get("effect_size"))),
            ("truth", v.get("truth") or "—"),
        ],
        "extra": extra,
        "source": source,
    }
