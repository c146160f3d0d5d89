"""Reports: `report.json` for machines and `report.html` for people.

`report.html` is rendered from the report dict alone, so `trainprove report RUN_DIR` re-renders it from
`report.json` at any time. The page is a Jinja2 template (`templates/report.html.j2`, its parts, style and
script) filled from a view of the report (`page_view`); it is self-contained (the style and the script
inlined, each verdict's chart an inline SVG drawn here, with no plotting library), nothing is fetched when
it is viewed, and its cost grows with the number of verdicts by a fraction of a millisecond each.
`render_index` renders one page across several audits (the demo's defenders). What a reader meets in
report.html, in order:

1. a summary: the generator, how many suspects, per test how many judged trained / not trained /
   inconclusive (and right, where the truth is known), how many warnings and errors, and where the time
   went;
2. the verdicts as a suspect × test matrix (colour-coded *and* written out), controls as its last rows;
3. warnings, errors and the controls;
4. per verdict, a collapsed `<details>`: the explanation, the numbers and a chart of the reference sample
   (histogram and strip of values), the suspect's value and the decision boundary;
5. the manifest.
"""

from __future__ import annotations

import html as _html
import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .accounting import COUNTS, PHASES, Accounts

if TYPE_CHECKING:
    from .engine.report import AuditReport

TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"

COLOURS = {TRAINED: "#b2182b", NOT_TRAINED: "#2166ac", INCONCLUSIVE: "#555555"}
"""The colour of each decision (the suspect's marker in a chart); text always says the decision too."""

SHORT = {TRAINED: "trained", NOT_TRAINED: "not trained", INCONCLUSIVE: "inconclusive"}
CELL_CLASS = {TRAINED: "d-t", NOT_TRAINED: "d-n", INCONCLUSIVE: "d-i"}

OPEN_DETAILS_UP_TO = 12
"""Reports with at most this many verdicts show every verdict's details open."""


# ---- writing --------------------------------------------------------------------------------------------


REPORT_KEPT = (
    "Every image set, model and answer is kept in the store: free space (or give --out another folder) "
    "and run the same command again, which makes nothing again but the report."
)


def _write(path: Path, text: str) -> None:
    """Write a report file; a full disk, a quota, a read-only folder or a missing permission is one
    error naming the path (`trainprove_core.store.CannotWrite`), never a traceback."""
    from .store import cannot_write

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
    _write(path, render_html(report))
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
    from .engine.report import AuditReport

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
    _write(json_path, json.dumps(doc, indent=2, default=str))
    html_path = None
    if page is not None:
        html_path = out_dir / "report.html"
        _write(html_path, page)
    return json_path, html_path


# ---- numbers --------------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return _html.escape(str(value), quote=True)


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None (None, NaN, ±inf, bools, strings and anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: Any, digits: int = 3) -> str:
    """A number (or anything) for the page, escaped: None as —, non-finite floats as ∞ / −∞ / NaN."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return str(value)
    return str(value)  # the template escapes it


def _num(value: float) -> str:
    """A finite number for a chart: three decimals as the explanations write them, fewer when large."""
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.5g}"


def _fmt_p(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return _fmt(value, 4)


def _seconds(value: Any) -> str:
    value = _finite(value)
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 100:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 6000 else f"{value / 3600:.1f} h"


def _ticks(lo: float, hi: float, target: int = 6) -> tuple[list[float], int]:
    """Round tick values within [lo, hi] (a step of 1, 2, 2.5 or 5 × 10^k) and the decimals they need."""
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude * 1.0000001:
            break
    step = m * magnitude
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if m == 2.5 else 0))
    return [k * step for k in range(first, last + 1)], decimals


# ---- the chart of one verdict ---------------------------------------------------------------------------

# Geometry of a chart (SVG user units; the page shows it 600 px wide at most, and it scales down).
W, H = 600, 188
X0, X1 = 52, 586  # plot area, left and right
Y_TOP, Y_BASE = 34, 128  # plot area, top and the histogram's baseline
RUG_TOP, RUG_BOTTOM = 134, 148  # the strip of sample values, under the baseline
LEGEND_Y, LEGEND_ROW = 15, 16  # the legend's first row (baseline), above the plot area: no line crosses it
MIN_BAR = 6  # px: the narrowest histogram bar (a squeezed sample gets fewer, wider bins)
CHAR_WIDTH = 6.6  # of the 11 px labels, a generous estimate (a legend wraps rather than overflows)

# Presentation attributes, not CSS classes: a chart looks the same in any renderer, and saved on its own.
BAR = 'fill="#cfcfcf" stroke="#7d7d7d" stroke-width=".8"'
ZONE = 'fill="#2166ac" fill-opacity=".08"'
BOUNDARY = 'stroke="#111" stroke-width="1.5" stroke-dasharray="5 3"'
AXIS = 'stroke="#555" fill="none"'
TEXT = 'font-family="system-ui,-apple-system,Segoe UI,sans-serif" font-size="11" fill="#333"'

SVG_STYLE = "svg.chart{display:block;width:100%;max-width:600px;height:auto;margin:.4em 0}"
"""The page's only CSS for the charts: their size."""


def _values(sample: Sequence[Any]) -> tuple[list[float], int]:
    """The finite numbers in `sample` and how many members were not."""
    values = [v for v in (_finite(x) for x in sample) if v is not None]
    return values, len(sample) - len(values)


def verdict_svg(verdict: Mapping[str, Any], uid: str = "c") -> str | None:
    """An inline SVG of the verdict's reference `sample` (histogram, and each value as a tick of a strip
    under it), the suspect's value (`suspect_value`, a line in the decision's colour) and the decision
    `boundary` (dashed), on an x range fitted to those values; None when the verdict has no finite sample.
    With `details.side` ("low" or "high"), the side of the boundary judged not trained is shaded. `uid`
    makes the ids inside it unique on a page."""
    raw = verdict.get("sample") or []
    if not isinstance(raw, (list, tuple)):
        return None
    sample, dropped = _values(raw)
    if not sample:
        return None
    value = _finite(verdict.get("suspect_value"))
    boundary = _finite(verdict.get("boundary"))
    decision = verdict.get("decision")
    colour = COLOURS.get(decision, "#000")
    quantity = str(verdict.get("quantity") or "value")
    details = verdict.get("details")
    side = details.get("side") if isinstance(details, dict) else None

    smin, smax = min(sample), max(sample)
    lo, hi = smin, smax
    for extra in (value, boundary):
        if extra is not None:
            lo, hi = min(lo, extra), max(hi, extra)
    span = hi - lo
    if span <= 0:
        half = max(abs(lo) * 0.05, 0.01)
        lo, hi = lo - half, hi + half
    else:
        lo, hi = lo - 0.05 * span, hi + 0.05 * span
    scale = (X1 - X0) / (hi - lo)

    def sx(x: float) -> float:
        return X0 + (x - lo) * scale

    # Histogram over the sample's own range (so a far-away suspect does not squash it into one bin).
    n = len(sample)
    bins = min(20, max(5, n // 2), max(1, int((smax - smin) * scale / MIN_BAR)))  # no bar under MIN_BAR px
    if smax > smin:
        width = (smax - smin) / bins
        counts = [0] * bins
        for x in sample:
            counts[min(bins - 1, int((x - smin) / width))] += 1
        edges = [smin + i * width for i in range(bins + 1)]
    else:  # one value: one bar, a few pixels wide
        counts, edges = [n], [smin - MIN_BAR / scale, smin + MIN_BAR / scale]
    top = max(counts)
    y_ticks = [t for t in _ticks(0, top, 4)[0] if t == int(t)] if top > 1 else [0.0, 1.0]
    y_scale = (Y_BASE - Y_TOP - 8) / max(top, y_ticks[-1])  # headroom under the suspect's marker

    shapes, texts = [], []
    legend = [("bar", f"reference sample, n = {n}")]
    if boundary is not None and side in ("low", "high"):
        bx = sx(boundary)
        x_a, x_b = (X0, bx) if side == "low" else (bx, X1)
        shapes.append(
            f'<rect {ZONE} x="{x_a:.1f}" y="{Y_TOP}" width="{x_b - x_a:.1f}" height="{RUG_BOTTOM - Y_TOP}"/>'
        )
        legend.append(("zone", "judged not trained"))
    # y axis: grid lines, tick labels, a title
    grid = "".join(f"M{X0} {Y_BASE - t * y_scale:.1f}H{X1}" for t in y_ticks if t)
    shapes.append(f'<path stroke="#e6e6e6" d="{grid}"/>')
    texts.extend(
        f'<text x="{X0 - 6}" y="{Y_BASE - t * y_scale + 4:.1f}" text-anchor="end">{int(t)}</text>'
        for t in y_ticks
    )
    texts.append(
        f'<text transform="translate(14 {(Y_TOP + Y_BASE) / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">count</text>'
    )
    # the histogram and the strip of values
    bars = "".join(
        f'<rect x="{sx(a):.1f}" y="{Y_BASE - c * y_scale:.1f}" width="{max(1.0, (b - a) * scale):.1f}" '
        f'height="{c * y_scale:.1f}"/>'
        for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True)
        if c
    )
    shapes.append(f"<g {BAR}>{bars}</g>")
    rug = "".join(f"M{sx(x):.1f} {RUG_TOP}V{RUG_BOTTOM}" for x in sample)
    shapes.append(f'<path stroke="#444" stroke-opacity=".6" d="{rug}"/>')
    # axes: the histogram's baseline, and the x axis with its ticks under the strip
    ticks, decimals = _ticks(lo, hi)
    marks = "".join(f"M{sx(t):.1f} {RUG_BOTTOM}v4" for t in ticks)
    shapes.append(f'<path {AXIS} d="M{X0} {Y_TOP}V{RUG_BOTTOM}H{X1}{marks}M{X0} {Y_BASE}H{X1}"/>')
    texts.extend(
        f'<text x="{sx(t):.1f}" y="{RUG_BOTTOM + 16}" text-anchor="middle">{t:.{decimals}f}</text>'
        for t in ticks
    )
    texts.append(f'<text x="{(X0 + X1) / 2:.0f}" y="{H - 4}" text-anchor="middle">{_esc(quantity)}</text>')
    # the boundary and the suspect, inside the plot area only (the legend is above it)
    if boundary is not None:
        bx = sx(boundary)
        shapes.append(f'<line {BOUNDARY} x1="{bx:.1f}" x2="{bx:.1f}" y1="{Y_TOP - 4}" y2="{RUG_BOTTOM}"/>')
        legend.append(("bnd", f"decision boundary {_num(boundary)}"))
    if value is not None:
        vx = sx(value)
        shapes.append(
            f'<line x1="{vx:.1f}" x2="{vx:.1f}" y1="{Y_TOP}" y2="{RUG_BOTTOM}" stroke="{colour}" '
            f'stroke-width="2.5"/><path d="M{vx - 5:.1f} {Y_TOP - 7}h10l-5 7z" fill="{colour}"/>'
        )
        legend.append(("val", f"suspect {_num(value)} ({SHORT.get(decision, decision)})"))
    else:
        legend.append(("none", "suspect: no value"))
    if dropped:
        texts.append(
            f'<text x="{X1}" y="{Y_TOP + 10}" text-anchor="end">{dropped} non-finite value'
            f"{'s' if dropped > 1 else ''} not drawn</text>"
        )
    keys, key_texts, rows = _legend(legend, colour)
    shift = LEGEND_ROW * (rows - 1)  # a legend of more rows pushes the plot down
    body = "".join(shapes) + f"<g {TEXT}>{''.join(texts)}</g>"
    if shift:
        body = f'<g transform="translate(0 {shift})">{body}</g>'
    title = _esc(_chart_title(sample, value, boundary, decision, quantity, dropped))
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H + shift}" role="img" '
        f'aria-labelledby="{uid}t"><title id="{uid}t">{title}</title>{keys}<g {TEXT}>{key_texts}</g>{body}'
        "</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], colour: str) -> tuple[str, str, int]:
    """Swatches and labels in rows above the plot area (widths estimated from the text, a row wrapped
    before it would leave the chart): the swatches, the labels and the number of rows."""
    x, y, rows, swatches, labels = float(X0), LEGEND_Y, 1, [], []
    for kind, label in items:
        width = (0 if kind == "none" else 20) + CHAR_WIDTH * len(label)
        if x > X0 and x + width > W - 4:
            x, y, rows = float(X0), y + LEGEND_ROW, rows + 1
        if kind == "bar":
            swatches.append(f'<rect {BAR} x="{x:.0f}" y="{y - 9}" width="14" height="10"/>')
        elif kind == "zone":
            swatches.append(f'<rect {ZONE} stroke="#9bb6d6" x="{x:.0f}" y="{y - 9}" width="14" height="10"/>')
        elif kind == "bnd":
            swatches.append(f'<line {BOUNDARY} x1="{x:.0f}" x2="{x + 16:.0f}" y1="{y - 4}" y2="{y - 4}"/>')
        elif kind == "val":
            swatches.append(
                f'<line x1="{x:.0f}" x2="{x + 16:.0f}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                'stroke-width="2.5"/>'
            )
        label_x = x + (0 if kind == "none" else 20)
        labels.append(f'<text x="{label_x:.0f}" y="{y}">{_esc(label)}</text>')
        x += width + 18
    return "".join(swatches), "".join(labels), rows


def _chart_title(
    sample: Sequence[float],
    value: float | None,
    boundary: float | None,
    decision: Any,
    quantity: str,
    dropped: int,
) -> str:
    """The chart in words (its accessible name, and a tooltip)."""
    low, high = _num(min(sample)), _num(max(sample))
    words = f"{quantity}: reference sample of {len(sample)} values from {low} to {high}"
    words += f"; suspect {_num(value)}" if value is not None else "; no suspect value"
    if boundary is not None:
        words += f"; decision boundary {_num(boundary)}"
    if dropped:
        words += f"; {dropped} non-finite values not drawn"
    return f"{words}; decision: {decision}"


# ---- the page -------------------------------------------------------------------------------------------

TEMPLATES = Path(__file__).with_name("templates")
"""report.html.j2 (one audit), index.html.j2 (several), their parts, style and script."""


@lru_cache(maxsize=1)
def _environment() -> Any:
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


def _cell_text(v: Mapping[str, Any]) -> str:
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
                "text": _cell_text(v),
            }
        )
    return {
        "label": label,
        "accuracy": accuracy,
        "truth": SHORT.get(truth, truth) if truth else "—",
        "note": note,
        "cells": out,
    }


def _controls_of(report: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    controls = []
    for key, title in (("negative_control", "Negative control"), ("positive_control", "Positive control")):
        c = report.get(key)
        if isinstance(c, dict):
            controls.append(
                (key, title, {**c, "verdicts": [v for v in c.get("verdicts") or [] if isinstance(v, dict)]})
            )
    return controls


def page_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """What report.html.j2 shows of a report dict as `run_audit` writes it (any older layout too)."""
    verdicts: list[Mapping[str, Any]] = [v for v in report.get("verdicts") or [] if isinstance(v, dict)]
    suspects: list[Mapping[str, Any]] = [s for s in report.get("suspects") or [] if isinstance(s, dict)]
    warnings = [str(w) for w in report.get("warnings") or []]
    errors = [str(e) for e in report.get("errors") or []]
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
    gen = report.get("generator") or {}

    decided = {"trained": 0, "not_trained": 0, "inconclusive": 0}
    for v in verdicts:
        key = {TRAINED: "trained", NOT_TRAINED: "not_trained", INCONCLUSIVE: "inconclusive"}.get(
            v.get("decision")
        )
        if key:
            decided[key] += 1

    # Per test, with what the controls said.
    expected = {"negative_control": NOT_TRAINED, "positive_control": TRAINED}
    control_decisions: dict[Any, list[dict[str, Any]]] = {}
    for key, title, control in controls:
        for v in control["verdicts"]:
            control_decisions.setdefault(v.get("test"), []).append(
                {"kind": title.split()[0].lower(), "ok": v.get("decision") == expected[key]}
            )
    has_truth = any(v.get("correct") is not None for v in verdicts)
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

    # The decision matrix.
    by_suspect: dict[str, dict[Any, tuple[int, Mapping[str, Any]]]] = {}
    for i, (_, v) in enumerate(entries):
        by_suspect.setdefault(str(v.get("suspect")), {})[v.get("test")] = (i, v)
    control_names = {str(v.get("suspect")) for _, _, c in controls for v in c["verdicts"]}
    rows, listed = [], set()
    for s in suspects:
        name = str(s.get("name"))
        listed.add(name)
        note = "" if name in by_suspect else str(s.get("error") or "no verdict")
        rows.append(
            _row(name, _fmt(s.get("accuracy")), s.get("truth"), by_suspect.get(name, {}), tests, note)
        )
    for name, cells in by_suspect.items():  # verdicts of suspects the report does not list, if any
        if name not in listed and name not in control_names:
            rows.append(_row(name, "—", next(iter(cells.values()))[1].get("truth"), cells, tests))
    control_rows = []
    for _, _, control in controls:
        for name in dict.fromkeys(str(v.get("suspect")) for v in control["verdicts"]):
            cells = by_suspect.get(name, {})
            truth = next(iter(cells.values()))[1].get("truth") if cells else None
            control_rows.append(_row(name, "—", truth, cells, tests))

    # Per verdict.
    shadow_accuracy = _finite((report.get("shadow") or {}).get("validation_accuracy"))
    is_open = len(entries) <= OPEN_DETAILS_UP_TO
    details, current = [], None
    template = _environment().get_template("parts.html.j2").module
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
        "generator": str(gen.get("use", "?")),
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
                        "ok": v.get("decision") == expected[key],
                        "statistic": _fmt(v.get("statistic"), 2),
                        "threshold": _fmt(v.get("threshold"), 2),
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
        "manifest": json.dumps(report.get("manifest", {}), indent=2, default=str),
    }


def render_html(report: Mapping[str, Any]) -> str:
    """The human report (see the module's docstring) of a report dict as `run_audit` writes it."""
    return _environment().get_template("report.html.j2").render(p=page_view(report))


def _facts(report: Mapping[str, Any]) -> list[str]:
    task = report.get("task") or {}
    shadow = report.get("shadow") or {}
    validation = report.get("validation") or {}
    facts = []
    if task:
        facts.append(f"task: {len(task.get('classes') or [])} classes, {_fmt(task.get('image_size'))} px")
    if shadow:
        facts.append(
            f"shadow set {_fmt(shadow.get('images'))} images, shadow accuracy "
            f"{_fmt(shadow.get('validation_accuracy'))}"
        )
    if validation:
        facts.append(
            f"validation set {_fmt(validation.get('images'))} images in "
            f"{_fmt(validation.get('batches'))} batches"
        )
    if report.get("created"):
        facts.append(f"created {report['created']} by trainprove {report.get('trainprove_version', '?')}")
    return facts


def _time_spent(report: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str]:
    """The phases of `timings` with their time (older layouts: a stage's per-suspect dict is summed),
    and the wall time; nothing where the report has neither."""
    timings = report.get("timings")
    if not isinstance(timings, dict) and report.get("wall_seconds") is None:
        return [], ""
    timings = timings if isinstance(timings, dict) else {}
    labels = dict(PHASES)
    spent = []
    for key, value in timings.items():
        if isinstance(value, dict):
            value = sum(x for x in (_finite(s) for s in value.values()) if x is not None)
        value = _finite(value)
        if value is not None and (value > 0 or key in labels):
            spent.append((labels.get(key, str(key).replace("_", " ")), _seconds(value)))
    return spent, _seconds(report.get("wall_seconds"))


def _work(report: Mapping[str, Any]) -> list[str]:
    counts = report.get("counts")
    if not isinstance(counts, dict):
        return []
    return [f"{label} {_fmt(counts[key])}" for key, label in COUNTS if key in counts]


def _verdict_view(
    i: int, v: Mapping[str, Any], accuracy: Any, shadow_accuracy: float | None, is_open: bool
) -> dict[str, Any]:
    chart = verdict_svg(v, f"c{i}")
    known = []
    if chart is None:
        if accuracy is not None:
            known.append(f"suspect's accuracy on the validation set {_fmt(accuracy)}")
        if shadow_accuracy is not None:
            known.append(f"shadow's {_fmt(shadow_accuracy)}")
        for key, label in (("suspect_value", "suspect value"), ("boundary", "boundary")):
            if v.get(key) is not None:
                known.append(f"{label} {_fmt(v.get(key))}")
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    extra = [
        (str(k), _fmt(val) if not isinstance(val, (list, dict)) else json.dumps(val, default=str))
        for k, val in details.items()
        if not isinstance(val, (list, dict)) or len(val) <= 8
    ]
    plugin, dist = v.get("plugin"), v.get("distribution")
    source = " ".join(str(v.get(k)) for k in ("distribution", "version") if v.get(k))
    if plugin and plugin != dist:
        source = f"{plugin} ({source})" if source else str(plugin)
    return {
        "index": i,
        "open": is_open,
        "cls": CELL_CLASS.get(v.get("decision"), ""),
        "tag": _cell_text(v),
        "suspect": v.get("suspect"),
        "test": v.get("test"),
        "correct": v.get("correct"),
        "explanation": v.get("explanation", ""),
        "chart": _safe(chart) if chart is not None else None,
        "known": known,
        "numbers": [
            ("statistic", _fmt(v.get("statistic"), 3)),
            ("critical value", _fmt(v.get("threshold"), 3)),
            ("p", _fmt_p(v.get("p_value"))),
            ("alpha", _fmt(v.get("alpha"), 4)),
            ("n", _fmt(v.get("n"))),
            ("effect size", _fmt(v.get("effect_size"))),
            ("truth", v.get("truth") or "—"),
        ],
        "extra": extra,
        "source": source,
    }


# ---- a page across audits -------------------------------------------------------------------------------


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
                "wall": _seconds(report.get("wall_seconds")),
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
                            "text": _cell_text(v),
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
    return _environment().get_template("index.html.j2").render(p=index_view(audits, groups, title))


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
            from .errors import InputError

            raise InputError(
                f"{source}: not a readable report ({exc}); the index was not written. Move that folder "
                "away (or run its audit again), then run this again."
            ) from None
        if not isinstance(report, dict) or not isinstance(report.get("verdicts"), list):
            from .errors import InputError

            raise InputError(
                f"{source}: not a trainprove report (no `verdicts` list); the index was not written"
            )
        href = Path(os.path.relpath(Path(run_dir) / "report.html", out_dir)).as_posix()
        audits.append((Path(run_dir).name, href, report))
    path = out_dir / "index.html"
    _write(path, render_index(audits, groups, title))
    return path
