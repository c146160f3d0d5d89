"""Reports: `report.json` for machines and `report.html` for people.

`report.html` is rendered from the report dict alone, so `trainprove report RUN_DIR` re-renders it from
`report.json` at any time. It is self-contained (inline CSS, one small inline script, and each verdict's
chart as inline SVG drawn here, with no plotting library), nothing is fetched when it is viewed, and its
cost grows with the number of verdicts by a fraction of a millisecond each. What a reader meets, in order:

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
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"

COLOURS = {TRAINED: "#b2182b", NOT_TRAINED: "#2166ac", INCONCLUSIVE: "#555555"}
"""The colour of each decision (the suspect's marker in a chart); text always says the decision too."""

SHORT = {TRAINED: "trained", NOT_TRAINED: "not trained", INCONCLUSIVE: "inconclusive"}
CELL_CLASS = {TRAINED: "d-t", NOT_TRAINED: "d-n", INCONCLUSIVE: "d-i"}

TIMING_LABELS = (
    ("checking", "building and checking"),
    ("image_sets", "image sets"),
    ("shadow_model", "shadow model"),
    ("queries", "queries"),
    ("decisions", "decisions"),
    ("controls", "controls"),
    ("report", "report"),
)
"""The stages `report.json`'s `timings` has (seconds), in the order of an audit."""

OPEN_DETAILS_UP_TO = 12
"""Reports with at most this many verdicts show every verdict's details open."""


# ---- writing --------------------------------------------------------------------------------------------


class Stopwatch:
    """Seconds per stage of an audit, for `report.json`'s `timings`. `lap(stage)` adds the time since the
    previous lap (or the start) to `stage`; `lap(stage, key)` to `stage[key]` (per suspect)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, Any] = {}

    def lap(self, stage: str, key: str | None = None) -> None:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        if key is None:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
        else:
            per = self.seconds.setdefault(stage, {})
            per[key] = per.get(key, 0.0) + elapsed

    def total(self) -> float:
        return time.perf_counter() - self.start

    def timings(self) -> dict[str, Any]:
        """The stages so far, rounded to milliseconds."""
        return {
            stage: {k: round(v, 3) for k, v in value.items()} if isinstance(value, dict) else round(value, 3)
            for stage, value in self.seconds.items()
        }


def write_html(report: Mapping[str, Any], out_dir: Path) -> Path:
    """Render `report` to `out_dir/report.html`; return its path."""
    path = Path(out_dir) / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def write_report(
    report: dict[str, Any], out_dir: Path, html: bool = True, clock: Stopwatch | None = None
) -> tuple[Path, Path | None]:
    """Write `report.html` (unless `html` is false) and `report.json` into `out_dir`; return their paths.

    With the audit's `clock`, the time spent here is recorded as `timings.report`, and `timings` and
    `wall_seconds` (the whole audit, report included) are set before `report.json` is written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = write_html(report, out_dir) if html else None
    if clock is not None:
        clock.lap("report")
        report["timings"] = clock.timings()
        report["wall_seconds"] = round(clock.total(), 2)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
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
    return _esc(value)


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

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222;"
    "line-height:1.4}h1{font-size:1.45em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:.6em 0;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".summary{font-size:1.08em;background:#f6f8fa;border:1px solid #dde3ea;border-radius:6px;"
    "padding:.6em 1em}.scroll{overflow-x:auto}.matrix{font-size:.84em}"
    ".matrix td,.matrix th[scope=row]{white-space:nowrap;padding:2px 5px}"
    ".facts{color:#444;font-size:.92em}.nav a{margin-right:1em}"
    ".matrix td.d-t{background:#f6d5d7}.matrix td.d-n{background:#d6e4f4}.matrix td.d-i{background:#ebebeb}"
    ".matrix td a{color:#111;text-decoration:none}.matrix td a:hover{text-decoration:underline}"
    ".matrix tbody.controls tr:first-child>*{border-top:2px solid #888}"
    ".matrix th[scope=row]{font-weight:600;background:#fafafa}.bad{font-weight:700;color:#8a1c1c}"
    ".card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:.6em 0}"
    ".warn{background:#fff4e5;border-color:#f0b45b}.err{background:#fdecec;border-color:#e08080}"
    "code{background:#f4f4f4;padding:0 3px}details.v{border:1px solid #ddd;border-radius:6px;margin:.35em 0;"
    "padding:.25em .8em}details.v>summary{cursor:pointer}details.v[open]{padding-bottom:.6em}"
    ".tag{display:inline-block;min-width:6.5em;padding:0 .4em;border-radius:3px;font-weight:600}"
    ".tag.d-t{background:#f6d5d7}.tag.d-n{background:#d6e4f4}.tag.d-i{background:#ebebeb}"
    ".sr{position:absolute;left:-9999px}.nochart{color:#444;font-style:italic}"
    ".kv{color:#444;font-size:.88em}pre{overflow:auto;font-size:.85em}" + SVG_STYLE
)

SCRIPT = (
    "function o(){var h=location.hash.slice(1),e=h&&document.getElementById(h);"
    "if(e&&e.tagName==='DETAILS')e.open=true}addEventListener('hashchange',o);o();"
)
"""Opens a verdict's collapsed details when the matrix links to it (the page works without it)."""


def _cell_text(v: Mapping[str, Any]) -> str:
    decision = v.get("decision")
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    if details.get("declined"):
        text = "declined"
    elif details.get("overruled"):
        text = "inconclusive*"
    else:
        text = SHORT.get(decision, str(decision))
    correct = v.get("correct")
    mark = "" if correct is None else (" ✓" if correct else " ✗")
    return _esc(text) + mark


def _matrix_row(
    label: str,
    accuracy: str,
    truth: Any,
    cells: Mapping[str, tuple[int, Mapping[str, Any]]],
    tests: Sequence[str],
    note: str = "",
) -> str:
    row = [
        f'<th scope="row">{_esc(label)}</th><td class="num">{accuracy}</td>'
        f"<td>{_esc(SHORT.get(truth, truth)) if truth else '—'}</td>"
    ]
    if note:
        row.append(f'<td colspan="{len(tests)}" class="bad">{note}</td>')
    for test in tests if not note else ():
        hit = cells.get(test)
        if hit is None:
            row.append("<td>—</td>")
            continue
        i, v = hit
        cls = CELL_CLASS.get(v.get("decision"), "")
        wrong = ' class="bad"' if v.get("correct") is False else ""
        row.append(f'<td class="{cls}"><a href="#v{i}"{wrong}>{_cell_text(v)}</a></td>')
    return "<tr>" + "".join(row) + "</tr>"


def render_html(report: Mapping[str, Any]) -> str:
    """The human report (see the module's docstring) of a report dict as `run_audit` writes it."""
    verdicts: list[Mapping[str, Any]] = [v for v in report.get("verdicts") or [] if isinstance(v, dict)]
    suspects: list[Mapping[str, Any]] = [s for s in report.get("suspects") or [] if isinstance(s, dict)]
    warnings = [str(w) for w in report.get("warnings") or []]
    errors = [str(e) for e in report.get("errors") or []]
    controls = [
        (key, title, report.get(key))
        for key, title in (("negative_control", "Negative control"), ("positive_control", "Positive control"))
        if isinstance(report.get(key), dict)
    ]
    controls = [
        (key, title, {**c, "verdicts": [v for v in c.get("verdicts") or [] if isinstance(v, dict)]})
        for key, title, c in controls
    ]
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
    parts = [
        f"<h1>trainprove audit — generator <code>{_esc(gen.get('use', '?'))}</code></h1>",
        _summary(report, verdicts, suspects, tests, warnings, errors, controls),
        '<p class="nav"><a href="#verdicts">Verdicts</a><a href="#warnings">Warnings and controls '
        f'({len(warnings) + len(errors)})</a><a href="#details">Details</a>'
        '<a href="#manifest">Manifest</a></p>',
    ]

    # The decision matrix.
    by_suspect: dict[str, dict[str, tuple[int, Mapping[str, Any]]]] = {}
    for i, (_, v) in enumerate(entries):
        by_suspect.setdefault(str(v.get("suspect")), {})[v.get("test")] = (i, v)
    head = "".join(f'<th scope="col">{_esc(t)}</th>' for t in tests)
    rows = []
    listed = set()
    for s in suspects:
        name = str(s.get("name"))
        listed.add(name)
        note = (
            ""
            if name in by_suspect
            else (f'not judged: <a href="#warnings">{_esc(s.get("error") or "no verdict")}</a>')
        )
        rows.append(
            _matrix_row(name, _fmt(s.get("accuracy")), s.get("truth"), by_suspect.get(name, {}), tests, note)
        )
    control_names = set()
    for _key, _, control in controls:
        for v in control.get("verdicts") or []:
            control_names.add(str(v.get("suspect")))
    for name, cells in by_suspect.items():  # verdicts of suspects the report does not list, if any
        if name not in listed and name not in control_names:
            rows.append(_matrix_row(name, "—", next(iter(cells.values()))[1].get("truth"), cells, tests))
    control_rows = []
    for _key, _title, control in controls:
        for name in dict.fromkeys(str(v.get("suspect")) for v in control.get("verdicts") or []):
            cells = by_suspect.get(name, {})
            truth = next(iter(cells.values()))[1].get("truth") if cells else None
            control_rows.append(_matrix_row(name, "—", truth, cells, tests))
    parts.append('<h2 id="verdicts">Verdicts</h2>')
    if entries or suspects:
        parts.append(
            "<p class='kv'>Each cell is one test's decision on one suspect and links to its details; ✓ / ✗: "
            "right / wrong where the truth is known; * overruled by a control; the controls are the last "
            'rows.</p><div class="scroll"><table class="matrix"><caption class=\'sr\'>Decisions, suspect '
            "by test</caption>"
            f'<thead><tr><th scope="col">suspect</th><th scope="col">accuracy</th><th scope="col">truth</th>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            + (f'<tbody class="controls">{"".join(control_rows)}</tbody>' if control_rows else "")
            + "</table></div>"
        )
    else:
        parts.append("<p>No suspect was judged.</p>")

    # Warnings, errors and the controls.
    parts.append('<h2 id="warnings">Warnings and controls</h2>')
    if not warnings and not errors:
        parts.append("<p>No warnings, no errors.</p>")
    parts.extend(f"<div class='card warn'><b>warning:</b> {_esc(w)}</div>" for w in warnings)
    parts.extend(f"<div class='card err'><b>error:</b> {_esc(e)}</div>" for e in errors)
    parts.append(_controls(report, controls))

    # Per verdict, collapsed.
    parts.append(
        '<h2 id="details">Details</h2><p>One entry per verdict: the explanation, the numbers, and a '
        "chart of the reference sample (a histogram, and each value as a tick under it) with the "
        "suspect's value and the decision boundary.</p>"
    )
    shadow_accuracy = _finite((report.get("shadow") or {}).get("validation_accuracy"))
    is_open = " open" if len(entries) <= OPEN_DETAILS_UP_TO else ""
    current = None
    for i, (group, v) in enumerate(entries):
        name = str(v.get("suspect"))
        if name != current:
            current = name
            parts.append(f"<h3>{_esc(name)}</h3>")
        parts.append(
            _verdict_details(
                i, v, accuracy.get(name) if group == "suspect" else None, shadow_accuracy, is_open
            )
        )

    manifest = json.dumps(report.get("manifest", {}), indent=2, default=str)
    parts.append(
        f'<h2 id="manifest">Manifest</h2><details><summary>The audit file (secrets masked), seeds, '
        f"plugins and versions, content hashes</summary><pre>{_esc(manifest)}</pre></details>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>trainprove report — {_esc(gen.get('use', '?'))}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(parts)}<script>{SCRIPT}</script></body></html>"
    )


def _summary(
    report: Mapping[str, Any],
    verdicts: Sequence[Mapping[str, Any]],
    suspects: Sequence[Mapping[str, Any]],
    tests: Sequence[str],
    warnings: Sequence[str],
    errors: Sequence[str],
    controls: Sequence[Any],
) -> str:
    gen = report.get("generator") or {}
    n_tests = len({v.get("test") for v in verdicts})
    counts = {d: 0 for d in SHORT}
    for v in verdicts:
        counts[v.get("decision")] = counts.get(v.get("decision"), 0) + 1
    problems = []
    if warnings:
        problems.append(f'<a href="#warnings">{len(warnings)} warning{"s" if len(warnings) != 1 else ""}</a>')
    if errors:
        problems.append(f'<a href="#warnings">{len(errors)} error{"s" if len(errors) != 1 else ""}</a>')
    line = (
        f"<p class='summary'>Generator <b>{_esc(gen.get('use', '?'))}</b>: {len(suspects)} suspect"
        f"{'s' if len(suspects) != 1 else ''} × {n_tests} test{'s' if n_tests != 1 else ''} = "
        f"{len(verdicts)} verdict{'s' if len(verdicts) != 1 else ''} — <b>{counts[TRAINED]}</b> trained on "
        "the generator, "
        f"<b>{counts[NOT_TRAINED]}</b> not trained, <b>{counts[INCONCLUSIVE]}</b> inconclusive; "
        + (", ".join(problems) if problems else "no warnings, no errors")
        + ".</p>"
    )
    # Per test.
    control_decisions: dict[str, list[str]] = {}
    expected = {"negative_control": NOT_TRAINED, "positive_control": TRAINED}
    for key, title, control in controls:
        for v in control.get("verdicts") or []:
            ok = v.get("decision") == expected[key]
            control_decisions.setdefault(v.get("test"), []).append(
                f"{title.split()[0].lower()} {'passed' if ok else '<span class=bad>failed</span>'}"
            )
    has_truth = any(v.get("correct") is not None for v in verdicts)
    rows = []
    for test in tests:
        mine = [v for v in verdicts if v.get("test") == test]
        c = {d: sum(1 for v in mine if v.get("decision") == d) for d in SHORT}
        declined = sum(1 for v in mine if isinstance(v.get("details"), dict) and v["details"].get("declined"))
        cells = [
            f'<th scope="row">{_esc(test)}</th>',
            f'<td class="num">{c[TRAINED]}</td>',
            f'<td class="num">{c[NOT_TRAINED]}</td>',
            f'<td class="num">{c[INCONCLUSIVE]}{f" ({declined} declined)" if declined else ""}</td>',
        ]
        if has_truth:
            judged = [v for v in mine if v.get("correct") is not None]
            right = sum(1 for v in judged if v.get("correct"))
            cells.append(f'<td class="num">{right} / {len(judged)}</td>' if judged else "<td>—</td>")
        if controls:
            cells.append(f"<td>{', '.join(control_decisions.get(test, [])) or '—'}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        "<th scope='col'>test</th><th scope='col'>trained</th><th scope='col'>not trained</th>"
        "<th scope='col'>inconclusive</th>"
    )
    head += "<th scope='col'>right, of decided with known truth</th>" if has_truth else ""
    head += "<th scope='col'>controls</th>" if controls else ""
    table = (
        f"<table class='per-test'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    return line + table + _facts(report)


def _facts(report: Mapping[str, Any]) -> str:
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
        facts.append(
            f"created {_esc(report['created'])} by trainprove {_esc(report.get('trainprove_version', '?'))}"
        )
    text = "<p class='facts'>" + " · ".join(facts) + "</p>" if facts else ""
    timings = report.get("timings")
    if isinstance(timings, dict) or report.get("wall_seconds") is not None:
        timings = timings if isinstance(timings, dict) else {}
        spent = []
        for key, label in TIMING_LABELS:
            value = timings.get(key)
            if isinstance(value, dict):
                total = sum(x for x in (_finite(s) for s in value.values()) if x is not None)
                slowest = max(value.items(), key=lambda kv: _finite(kv[1]) or 0.0, default=None)
                extra = f" for {len(value)} suspect{'s' if len(value) != 1 else ''}"
                if slowest and len(value) > 1:
                    extra += f", slowest {_esc(slowest[0])} {_seconds(slowest[1])}"
                spent.append(f"{label} {_seconds(total)}{extra}")
            elif value is not None:
                spent.append(f"{label} {_seconds(value)}")
        wall = report.get("wall_seconds")
        text += "<p class='facts'>time: " + " · ".join(spent + [f"<b>wall {_seconds(wall)}</b>"]) + "</p>"
    return text


def _controls(report: Mapping[str, Any], controls: Sequence[Any]) -> str:
    texts = {
        "negative_control": (
            "A model trained like the shadow, but on images from <code>{}</code>: it must come out "
            "<code>not-trained-on-generator</code>; where a test accuses it, that test's accusations here "
            "are reported inconclusive.",
            "source",
            NOT_TRAINED,
        ),
        "positive_control": (
            "A model trained on the generator's own images by <code>{}</code>, with a recipe unlike the "
            "shadow's: it must come out <code>trained-on-generator</code>; where a test clears it, that "
            "test's clearings here are reported inconclusive.",
            "trainer",
            TRAINED,
        ),
    }
    if not controls:
        return (
            "<p>No control in this audit: a <code>[negative_control]</code> (another source) and a "
            "<code>[positive_control]</code> (the generator's own images, another recipe) tell whether "
            "each test can be trusted here (docs/audit-file.md).</p>"
        )
    parts = []
    for key, title, control in controls:
        text, field, expected = texts[key]
        parts.append(f"<h3>{title}</h3><p>{text.format(_esc(control.get(field, '?')))}</p>")
        rows = []
        for v in control.get("verdicts") or []:
            ok = v.get("decision") == expected
            rows.append(
                f"<tr><th scope='row'>{_esc(v.get('test'))}</th><td>{_esc(v.get('decision'))}</td>"
                f"<td>{'passed' if ok else '<span class=bad>failed</span>'}</td>"
                f"<td class='num'>{_fmt(v.get('statistic'), 2)}</td>"
                f"<td class='num'>{_fmt(v.get('threshold'), 2)}</td>"
                f"<td>{_esc(v.get('explanation', ''))}</td></tr>"
            )
        parts.append(
            "<table><thead><tr><th>test</th><th>decision</th><th>control</th><th>statistic</th>"
            f"<th>critical</th><th>why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return "".join(parts)


def _verdict_details(
    i: int, v: Mapping[str, Any], accuracy: Any, shadow_accuracy: float | None, is_open: str
) -> str:
    decision = v.get("decision")
    cls = CELL_CLASS.get(decision, "")
    correct = v.get("correct")
    mark = "" if correct is None else (" — right" if correct else " — <span class='bad'>wrong</span>")
    head = (
        f"<details class='v' id='v{i}'{is_open}><summary><span class='tag {cls}'>{_cell_text(v)}</span> "
        f"<b>{_esc(v.get('suspect'))}</b> · {_esc(v.get('test'))}{mark}</summary>"
        f"<p>{_esc(v.get('explanation', ''))}</p>"
    )
    chart = verdict_svg(v, f"c{i}")
    if chart is None:
        known = [f"suspect's accuracy on the validation set {_fmt(accuracy)}"] if accuracy is not None else []
        if shadow_accuracy is not None:
            known.append(f"shadow's {_fmt(shadow_accuracy)}")
        for key, label in (("suspect_value", "suspect value"), ("boundary", "boundary")):
            if v.get(key) is not None:
                known.append(f"{label} {_fmt(v.get(key))}")
        chart = (
            f"<p class='nochart'>No reference sample to draw{': ' if known else '.'}"
            f"{'; '.join(known)}{'.' if known else ''}</p>"
        )
    numbers = [
        ("statistic", _fmt(v.get("statistic"), 3)),
        ("critical value", _fmt(v.get("threshold"), 3)),
        ("p", _fmt_p(v.get("p_value"))),
        ("alpha", _fmt(v.get("alpha"), 4)),
        ("n", _fmt(v.get("n"))),
        ("effect size", _fmt(v.get("effect_size"))),
        ("truth", _esc(v.get("truth")) if v.get("truth") else "—"),
    ]
    kv = " · ".join(f"{k} {val}" for k, val in numbers)
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    extra = " · ".join(
        f"{_esc(k)} {_fmt(val) if not isinstance(val, (list, dict)) else _esc(json.dumps(val, default=str))}"
        for k, val in details.items()
        if not isinstance(val, (list, dict)) or len(val) <= 8
    )
    plugin, dist = v.get("plugin"), v.get("distribution")
    source = " ".join(_esc(v.get(k)) for k in ("distribution", "version") if v.get(k))
    if plugin and plugin != dist:
        source = f"{_esc(plugin)} ({source})" if source else _esc(plugin)
    return (
        head
        + chart
        + f"<p class='kv'>{kv}</p>"
        + (f"<p class='kv'>{extra}</p>" if extra else "")
        + (f"<p class='kv'>decided by {source}</p>" if source else "")
        + "</details>"
    )
