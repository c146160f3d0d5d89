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

from .chart import LEGEND_ROW, RUG_BOTTOM, Y_TOP, H, verdict_svg
from .files import print_pdf, write_html, write_pdf, write_report
from .index import index_view, render_index, write_index
from .page import page_view, render_html
from .words import COLOURS, INCONCLUSIVE, NOT_TRAINED, SHORT, TRAINED

__all__ = [
    "COLOURS",
    "H",
    "INCONCLUSIVE",
    "LEGEND_ROW",
    "NOT_TRAINED",
    "RUG_BOTTOM",
    "SHORT",
    "TRAINED",
    "Y_TOP",
    "index_view",
    "page_view",
    "print_pdf",
    "render_html",
    "render_index",
    "verdict_svg",
    "write_html",
    "write_index",
    "write_pdf",
    "write_report",
]
