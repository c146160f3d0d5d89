"""A fleet audit: which of several candidate generators each of many suspects was trained on.

    fleet file ─▶ one ordinary audit per (task, candidate generator), with every suspect of that task
              ─▶ run_audit on each (cached and resumable like any audit, on the file's [executor])
              ─▶ per suspect: the candidates whose audit accuses it, by one decision test (`attribute_by`)
              ─▶ attribution.md (for people, read first), attribution.json (for machines), index.html;
                 each audit's audit.toml, report.json and report.html in <out>/<generator>/
                 (<out>/<task>/<generator>/ with several tasks)

A fleet is a thin layer: it writes ordinary audit documents, validates them with `config_from_dict` and
runs them with `run_audit`, so image sets, shadow models and answers are shared between its audits
through the store (an image set of a candidate is made once, whichever audits use it) and a second run
does no work. A folder of ordinary audit files is a fleet too: each file is one candidate's audit, and
suspects of the same name are the same suspect. docs/fleet.md describes the file and the report.

The package is split by job: `spec` (the fleet file, expanded into audit documents), `run` (every audit,
on shared executors), `attribution` (who trained on which candidate, error rates) and `render` (what it
writes). What a command built on a fleet uses (the demo) is exported here.
"""

from __future__ import annotations

from .attribution import EXPLAIN, attribute, attribute_one, confusion, format_confusion, format_rates, rates
from .render import render_html, render_markdown, summary_lines, toml_dumps, write_attribution
from .run import check_suspects, run_fleet
from .spec import (
    ACCUSED,
    CLEARED,
    NONE,
    OTHER_GENERATORS,
    UNSURE,
    Fleet,
    FleetAudit,
    FleetResult,
    FleetSuspect,
    expand,
    fleet_from_dict,
    fleet_from_folder,
    load_fleet,
)

__all__ = [
    "ACCUSED",
    "CLEARED",
    "EXPLAIN",
    "NONE",
    "OTHER_GENERATORS",
    "UNSURE",
    "Fleet",
    "FleetAudit",
    "FleetResult",
    "FleetSuspect",
    "attribute",
    "attribute_one",
    "check_suspects",
    "confusion",
    "expand",
    "fleet_from_dict",
    "fleet_from_folder",
    "format_confusion",
    "format_rates",
    "load_fleet",
    "rates",
    "render_html",
    "render_markdown",
    "run_fleet",
    "summary_lines",
    "toml_dumps",
    "write_attribution",
]
