"""The report's words and numbers: one vocabulary for the three decisions (report.html, the fleet's
pages, the console and report.json's human strings say the same thing) and how a number is written."""

from __future__ import annotations

import html as _html
import math
from typing import Any

TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"

COLOURS = {TRAINED: "#b2182b", NOT_TRAINED: "#2166ac", INCONCLUSIVE: "#555555"}
"""The colour of each decision (the suspect's marker in a chart); text always says the decision too."""

SHORT = {TRAINED: "trained", NOT_TRAINED: "not trained", INCONCLUSIVE: "inconclusive"}
"""The decisions in a word or two (a table's cell, a count): the same words on every page and console."""

CELL_CLASS = {TRAINED: "d-t", NOT_TRAINED: "d-n", INCONCLUSIVE: "d-i"}


def said(decision: Any, generator: str) -> str:
    """A decision in a sentence: "trained on G's images", "not trained on G's images", "inconclusive"."""
    if decision == TRAINED:
        return f"trained on {generator}'s images"
    if decision == NOT_TRAINED:
        return f"not trained on {generator}'s images"
    return SHORT.get(decision, str(decision))


def esc(value: Any) -> str:
    return _html.escape(str(value), quote=True)


def finite(value: Any) -> float | None:
    """`value` as a finite float, or None (None, NaN, ±inf, bools, strings and anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value: Any, digits: int = 3) -> str:
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


def num(value: float) -> str:
    """A finite number for a chart: three decimals as the explanations write them, fewer when large."""
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.5g}"


def fmt_p(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return fmt(value, 4)


def seconds(value: Any) -> str:
    value = finite(value)
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 100:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 6000 else f"{value / 3600:.1f} h"
