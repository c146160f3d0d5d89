"""The chart of one verdict: an inline SVG of its reference sample (histogram and strip of values), the
suspect's value and the decision boundary, drawn here with no plotting library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .words import COLOURS, SHORT, esc, finite, num


def axis_ticks(lo: float, hi: float, target: int = 6) -> tuple[list[float], int]:
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
    values = [v for v in (finite(x) for x in sample) if v is not None]
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
    value = finite(verdict.get("suspect_value"))
    boundary = finite(verdict.get("boundary"))
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
    y_ticks = [t for t in axis_ticks(0, top, 4)[0] if t == int(t)] if top > 1 else [0.0, 1.0]
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
    ticks, decimals = axis_ticks(lo, hi)
    marks = "".join(f"M{sx(t):.1f} {RUG_BOTTOM}v4" for t in ticks)
    shapes.append(f'<path {AXIS} d="M{X0} {Y_TOP}V{RUG_BOTTOM}H{X1}{marks}M{X0} {Y_BASE}H{X1}"/>')
    texts.extend(
        f'<text x="{sx(t):.1f}" y="{RUG_BOTTOM + 16}" text-anchor="middle">{t:.{decimals}f}</text>'
        for t in ticks
    )
    texts.append(f'<text x="{(X0 + X1) / 2:.0f}" y="{H - 4}" text-anchor="middle">{esc(quantity)}</text>')
    # the boundary and the suspect, inside the plot area only (the legend is above it)
    if boundary is not None:
        bx = sx(boundary)
        shapes.append(f'<line {BOUNDARY} x1="{bx:.1f}" x2="{bx:.1f}" y1="{Y_TOP - 4}" y2="{RUG_BOTTOM}"/>')
        legend.append(("bnd", f"decision boundary {num(boundary)}"))
    if value is not None:
        vx = sx(value)
        shapes.append(
            f'<line x1="{vx:.1f}" x2="{vx:.1f}" y1="{Y_TOP}" y2="{RUG_BOTTOM}" stroke="{colour}" '
            f'stroke-width="2.5"/><path d="M{vx - 5:.1f} {Y_TOP - 7}h10l-5 7z" fill="{colour}"/>'
        )
        legend.append(("val", f"suspect {num(value)} ({SHORT.get(decision, decision)})"))
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
    title = esc(_chart_title(sample, value, boundary, decision, quantity, dropped))
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
        labels.append(f'<text x="{label_x:.0f}" y="{y}">{esc(label)}</text>')
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
    low, high = num(min(sample)), num(max(sample))
    words = f"{quantity}: reference sample of {len(sample)} values from {low} to {high}"
    words += f"; suspect {num(value)}" if value is not None else "; no suspect value"
    if boundary is not None:
        words += f"; decision boundary {num(boundary)}"
    if dropped:
        words += f"; {dropped} non-finite values not drawn"
    return f"{words}; decision: {decision}"
