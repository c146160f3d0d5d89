"""What a fleet writes: attribution.md, attribution.json, index.html, the summary lines and TOML."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..report.words import SHORT
from .attribution import EXPLAIN, OUTCOMES, format_confusion, format_rates
from .spec import ACCUSED, CLEARED, UNSURE

# ---- the report -----------------------------------------------------------------------------------------


def _counts_line(entry: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{entry['counts'][o]} {OUTCOMES[o]}" for o in OUTCOMES)
    if entry["with_truth"]:
        undecided = entry["with_truth"] - entry["right"] - entry["wrong"]
        counts += (
            f"; against the truth of {entry['with_truth']}: {entry['right']} right, {entry['wrong']} wrong, "
            f"{undecided} undecided"
        )
    return counts


def summary_lines(attribution: Mapping[str, Any]) -> list[str]:
    """The attribution, one line per suspect, and the counts: what `trainprove fleet` prints."""
    rows = attribution["suspects"]
    several_tasks = len(attribution["tasks"]) > 1
    width = max([len(r["suspect"]) for r in rows] + [8])
    lines = []
    for r in rows:
        task = f" [{r['task']}]" if several_tasks else ""
        mark = {True: "  (right)", False: f"  (WRONG: truth {'+'.join(r['truth'] or [])})"}.get(
            r["correct"], ""
        )
        lines.append(f"  {r['suspect']:<{width}}{task}  {r['text']}{mark}")
        if r["attribution"] == "undecided":
            lines.append(f"  {'':<{width}}  why: {r['why']}")
    by = attribution["attribute_by"]
    lines.append(f"attribution by {by}: {_counts_line(attribution['by_test'][by])}")
    return lines


CELL = {d: (cls, SHORT[d]) for d, cls in ((ACCUSED, "acc"), (CLEARED, "clr"), (UNSURE, "unk"))}
"""A decision's CSS class and words in the report's cells: the words and colours of every report."""

LEAD = (
    "Which candidate generator's images was each suspect trained on? Each suspect was audited once "
    "per candidate generator (one audit each, with its own shadow model and validation images); each "
    "cell is that audit's verdict: *trained* (on that candidate's images), *not trained* or "
    "*inconclusive*. A suspect is **from G** when only G's audit finds it trained, **from several** when "
    "more than one does, **none of the candidates** when every audit finds it not trained, and "
    "**undecided** when none finds it trained and at least one could not decide (the reason is given)."
)


def render_markdown(attribution: Mapping[str, Any]) -> str:
    by = attribution["attribute_by"]
    rows = attribution["suspects"]
    several_tasks = len(attribution["tasks"]) > 1
    has_truth = any(r["truth"] is not None for r in rows)
    out = [
        f"# Fleet audit: {Path(attribution['fleet']).name}",
        "",
        LEAD,
        "",
        f"Decided by the test `{by}` (plugin `{attribution['descriptions'].get(by, by)}`); "
        f"{len(rows)} suspects, {len(attribution['generators'])} candidates, "
        f"{len(attribution['audits'])} audits. Each verdict links to its evidence in that audit's report.",
        "",
        f"**{_counts_line(attribution['by_test'][by])}.**",
        "",
        "| suspect |"
        + (" task |" if several_tasks else "")
        + " attribution |"
        + (" truth |" if has_truth else ""),
        "|---|" + ("---|" if several_tasks else "") + "---|" + ("---|" if has_truth else ""),
    ]
    for r in rows:
        truth = ""
        if has_truth:
            mark = {True: " ✓", False: " ✗"}.get(r["correct"], "")
            truth = f" {'+'.join(r['truth']) if r['truth'] else '?'}{mark} |"
        task = f" {r['task']} |" if several_tasks else ""
        out.append(f"| {r['suspect']} |{task} {r['text']} |{truth}")
    undecided = [r for r in rows if r["attribution"] == "undecided"]
    if undecided:
        out += ["", "## Why undecided", ""]
        out += [f"- **{r['suspect']}**: {r['why']}" for r in undecided]
    partly = [r for r in rows if r["attribution"] != "undecided" and r["undecided"]]
    if partly:
        out += ["", "## Attributed, though some candidates could not decide", ""]
        out += [f"- **{r['suspect']}** ({r['text']}): {r['why']}" for r in partly]
    out += ["", f"## Every verdict of `{by}`", ""]
    generators = attribution["generators"]
    out.append("| suspect | " + " | ".join(generators) + " |")
    out.append("|---|" + "---|" * len(generators))
    for r in rows:
        cells = []
        for g in generators:
            cell = (r["verdicts"].get(g) or {}).get("tests", {}).get(by)
            said = CELL.get(cell["decision"], ("", cell["decision"]))[1] if cell else ""
            cells.append(f"[{said}]({cell['evidence']})" if cell and cell["evidence"] else said)
        out.append(f"| {r['suspect']} | " + " | ".join(cells) + " |")
    if len(attribution["tests"]) > 1:
        out += ["", "## The other tests", ""]
        out += [
            f"- `{t}`: {_counts_line(attribution['by_test'][t])}" for t in attribution["tests"] if t != by
        ]
    benchmark = [t for t in attribution["tests"] if attribution["by_test"][t]["confusion"]]
    if benchmark:
        out += ["", "## Against the truth (benchmark)", "", EXPLAIN, ""]
        for t in benchmark:
            entry = attribution["by_test"][t]
            out += [
                f"`{t}`:",
                "",
                "```",
                format_confusion(entry["confusion"]),
                "",
                format_rates(entry["rates"]),
            ]
            out += ["```", ""]
    out += ["", "## Evidence", ""]
    for a in attribution["audits"]:
        who = f"{a['generator']} on {a['task']}" if a["task"] else a["generator"]
        problems = f" — {len(a['errors'])} errors" if a["errors"] else ""
        out.append(
            f"- {who}: [report.html]({a['report']}), [report.json]({a['report_json']}), "
            f"[audit.toml]({a['audit_file']}){problems}"
        )
    return "\n".join(out) + "\n"


STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.acc{background:#f6d5d7}.clr{background:#d6e4f4}.unk{background:#ebebeb}
td.acc,td.clr,td.unk{white-space:nowrap}
.err{background:#e6e6e6}.big{font-size:1.1em}a{color:#0645ad}.why{color:#555;font-size:.9em}
.bad{color:#b00020;font-weight:bold}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}.conf th{white-space:nowrap}
@media print{body{max-width:none;margin:0;font-size:10pt}details>*{display:block}tr{break-inside:avoid}
details::details-content{content-visibility:visible;display:block}*{print-color-adjust:exact}}"""


def _inline_markdown(text: str) -> str:
    """**bold** and *italic* of an escaped text, as HTML."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def _confusion_html(table: Mapping[str, Mapping[str, list[int]]]) -> str:
    """The confusion table (`attribution.confusion`) as an HTML table that wraps, never cut off."""
    e = html.escape
    columns = list(next(iter(table.values()), {}))
    head = "<th>suspect trained on \\ defender</th>" + "".join(f"<th>{e(c)}</th>" for c in columns)
    body = []
    for source, row in table.items():
        cells = []
        for c in columns:
            flagged, n, unsure = row[c]
            cells.append(f"<td class='num'>{flagged}/{n}" + (f" ({unsure}?)" if unsure else "") + "</td>")
        body.append(f"<tr><th>{e(source)}</th>{''.join(cells)}</tr>")
    return f"<table class='conf'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rates_html(r: Mapping[str, Any]) -> str:
    """The rates (`attribution.rates`) as a one-row table."""

    def rate(k: int, n: int) -> str:
        return f"{k / n:.3f} ({k}/{n})" if n else "n/a"

    cells = (
        ("verification accuracy", f"{r['accuracy']:.3f}"),
        ("false-accusation rate", rate(r["false_accusations"], r["negatives"])),
        ("false-clearing rate", rate(r["false_clearings"], r["positives"])),
        ("inconclusive", rate(round(r["abstention_rate"] * r["suspects"]), r["suspects"])),
    )
    head = "".join(f"<th>{k}</th>" for k, _ in cells)
    row = "".join(f"<td>{v}</td>" for _, v in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody><tr>{row}</tr></tbody></table>"


def render_html(attribution: Mapping[str, Any]) -> str:
    """A small self-contained page (no scripts, nothing fetched): the attribution of every suspect with
    each candidate's verdict linked to its evidence, then the other tests and the benchmark."""
    e = html.escape
    by = attribution["attribute_by"]
    rows = attribution["suspects"]
    generators = attribution["generators"]
    several_tasks = len(attribution["tasks"]) > 1
    has_truth = any(r["truth"] is not None for r in rows)
    name = Path(attribution["fleet"]).name

    def matrix(test: str) -> str:
        head = "<th>suspect</th>" + ("<th>task</th>" if several_tasks else "") + "<th>attribution</th>"
        head += "<th>truth</th>" if has_truth else ""
        head += "".join(f"<th>{e(g)}</th>" for g in generators)
        body = []
        for r in rows:
            a = r["by_test"][test]
            mark = {True: " ✓", False: " <span class='bad'>✗</span>"}.get(a["correct"], "")
            cells = f"<td><b>{e(r['suspect'])}</b></td>"
            cells += f"<td>{e(r['task'])}</td>" if several_tasks else ""
            why = f"<div class='why'>{e(a['why'])}</div>" if a["why"] else ""
            cells += f"<td class='big'>{e(a['text'])}{why}</td>"
            if has_truth:
                cells += f"<td>{e('+'.join(r['truth'])) if r['truth'] else '?'}{mark}</td>"
            for g in generators:
                cell = (r["verdicts"].get(g) or {}).get("tests", {}).get(test)
                if cell is None:
                    cells += "<td></td>"
                    continue
                cls, text = CELL.get(cell["decision"], ("err", cell["decision"]))
                link = f"<a href='{e(cell['evidence'])}'>{text}</a>" if cell["evidence"] else e(text)
                cells += f"<td class='{cls}' title='{e(cell['reason'])}'>{link}</td>"
            body.append(f"<tr>{cells}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Fleet audit: {e(name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Fleet audit: {e(name)}</h1>",
        f"<p>{_inline_markdown(e(LEAD))}</p>",
        f"<p>Decided by the test <b>{e(by)}</b>. {len(rows)} suspects, {len(generators)} candidates, "
        f"{len(attribution['audits'])} audits; each cell links to that verdict in its audit's report.</p>",
        f"<p class='big'><b>{e(_counts_line(attribution['by_test'][by]))}</b></p>",
        matrix(by),
    ]
    for t in attribution["tests"]:
        if t != by:
            parts.append(
                f"<details><summary>The same by <b>{e(t)}</b>: "
                f"{e(_counts_line(attribution['by_test'][t]))}</summary>{matrix(t)}</details>"
            )
    benchmark = [t for t in attribution["tests"] if attribution["by_test"][t]["confusion"]]
    if benchmark:
        parts.append(f"<h2>Against the truth</h2><p>{e(EXPLAIN)}</p>")
        for t in benchmark:
            entry = attribution["by_test"][t]
            parts.append(f"<h3>{e(t)}</h3>{_confusion_html(entry['confusion'])}{_rates_html(entry['rates'])}")
    parts.append("<h2>Evidence</h2><ul>")
    for a in attribution["audits"]:
        who = f"{a['generator']} on {a['task']}" if a["task"] else a["generator"]
        problems = f" — {len(a['errors'])} errors" if a["errors"] else ""
        parts.append(
            f"<li>{e(who)}: <a href='{e(a['report'])}'>report.html</a>, "
            f"<a href='{e(a['report_json'])}'>report.json</a>, "
            f"<a href='{e(a['audit_file'])}'>audit.toml</a>{e(problems)}</li>"
        )
    parts.append(
        "</ul><p><a href='attribution.json'>attribution.json</a> · "
        "<a href='attribution.md'>attribution.md</a></p></body></html>"
    )
    return "".join(parts)


def write_attribution(attribution: Mapping[str, Any], out_dir: Path) -> None:
    """attribution.json, attribution.md and index.html under `out_dir`."""
    (out_dir / "attribution.json").write_text(json.dumps(attribution, indent=2, default=str), "utf-8")
    (out_dir / "attribution.md").write_text(render_markdown(attribution), "utf-8")
    (out_dir / "index.html").write_text(render_html(attribution), "utf-8")


# ---- TOML out -------------------------------------------------------------------------------------------


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """TOML for plain documents (scalars, lists, tables, arrays of tables; None left out, as TOML has no
    null), so the audits and fleets trainprove writes can be re-run by hand."""

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):  # a table inside a table: an inline table
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None) + " }"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    def body(table: Mapping[str, Any]) -> list[str]:
        return [f"{key(k)} = {value(v)}" for k, v in table.items() if v is not None]

    lines = body({k: v for k, v in doc.items() if not isinstance(v, Mapping) and not is_tables(v)})
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{key(k)}]", *body(v)]
        elif is_tables(v):
            for item in v:
                lines += ["", f"[[{key(k)}]]", *body(item)]
    return "\n".join(lines) + "\n"
