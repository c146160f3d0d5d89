"""Reading a report: report.json's document (any older layout too) as the typed `AuditReport`, and a
nested value as rows of a table (the page shows tables, never raw dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine.report import AuditReport

_TABLES = ("task", "generator", "shadow", "validation", "timings", "counts", "manifest")
_LISTS = ("suspects", "verdicts", "warnings", "errors")
_CONTROLS = ("negative_control", "positive_control")


def as_report(report: AuditReport | Mapping[str, Any]) -> AuditReport:
    """`report` as an `AuditReport`: itself, or report.json's document with what an older (or damaged)
    layout lacks filled in (empty tables and lists, no controls), so the page reads fields, not keys."""
    from ..engine.report import AuditReport

    if isinstance(report, AuditReport):
        return report
    doc: dict[str, Any] = {
        "trainprove_version": report.get("trainprove_version"),
        "created": report.get("created"),
        "wall_seconds": report.get("wall_seconds"),
    }
    for key in _TABLES:
        value = report.get(key)
        doc[key] = value if isinstance(value, dict) else {}
    for key in _LISTS:
        value = report.get(key)
        doc[key] = value if isinstance(value, list) else []
    for key in _CONTROLS:
        value = report.get(key)
        doc[key] = value if isinstance(value, dict) else None
    if not isinstance(report.get("timings"), dict):  # the page tells "no timings" from "none spent"
        doc["timings"] = None
    return AuditReport.from_json(doc)


def records(items: Any) -> list[Mapping[str, Any]]:
    """The objects of a list from report.json (anything else left out)."""
    return [x for x in items or [] if isinstance(x, Mapping)]


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested mapping as (dotted path, leaf) rows: {"model": {"sha256": "ab"}} -> [("model.sha256",
    "ab")]. Lists of plain values are one leaf (written out); a list of tables numbers its members."""
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, inner in value.items():
            rows += flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return rows if rows or not prefix else [(prefix, "{}")]
    if isinstance(value, (list, tuple)) and any(isinstance(x, Mapping) for x in value):
        rows = []
        for i, inner in enumerate(value):
            rows += flatten(inner, f"{prefix}[{i}]")
        return rows
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in value) or "[]")]
    return [(prefix, value)]
