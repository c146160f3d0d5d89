"""`trainprove demo`: build the pool, audit it with every defender, print and write the summary."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from trainprove_core import progress
from trainprove_core.audit import Workspace, run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.plugins import PluginSet
from trainprove_core.store import Store
from trainprove_core.task import Task

from .pool import CLASSES, DEFENDERS, IMAGE_SIZE, SOURCES, SUSPECT_VARIANTS, audit_document, build_pool


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """TOML for the plain audit documents the demo writes (scalars, lists of scalars, tables, arrays of
    tables), so each defender's audit can be re-run by hand with `trainprove audit`."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):  # a table inside a table: an inline table
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    lines = [
        f"{k} = {value(v)}"
        for k, v in doc.items()
        if not isinstance(v, dict | list) or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))
    ]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def summarise(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Confusion counts and error rates of one decision test's verdicts over the pool."""
    pos = [v for v in verdicts if v["truth"] == "trained-on-generator"]
    neg = [v for v in verdicts if v["truth"] == "not-trained-on-generator"]
    decided = [v for v in verdicts if v["decision"] != "inconclusive"]
    flagged = lambda vs: sum(v["decision"] == "trained-on-generator" for v in vs)  # noqa: E731
    cleared = lambda vs: sum(v["decision"] == "not-trained-on-generator" for v in vs)  # noqa: E731
    return {
        "suspects": len(verdicts),
        "accuracy": sum(bool(v["correct"]) for v in verdicts) / len(verdicts) if verdicts else None,
        "false_accusation_rate": flagged(neg) / len(neg) if neg else None,
        "false_clearing_rate": cleared(pos) / len(pos) if pos else None,
        "abstention_rate": 1 - len(decided) / len(verdicts) if verdicts else None,
        "false_accusations": flagged(neg),
        "negatives": len(neg),
        "false_clearings": cleared(pos),
        "positives": len(pos),
    }


def confusion(
    verdicts: Sequence[Mapping[str, Any]], sources: Mapping[str, str]
) -> dict[str, dict[str, list[int]]]:
    """rows: the suspect's true source; columns: the defender; cell: [flagged, suspects, inconclusive]."""
    table = {s: {d: [0, 0, 0] for d in DEFENDERS} for s in SOURCES}
    for v in verdicts:
        cell = table[sources[v["suspect"]]][v["defender"]]
        cell[0] += v["decision"] == "trained-on-generator"
        cell[1] += 1
        cell[2] += v["decision"] == "inconclusive"
    return table


EXPLAIN = (
    "Each row is the source a suspect was trained on, each column the generator that audits it; a cell k/n "
    "says k of the n suspects of that row were flagged (judged trained-on-generator) by that defender, "
    "(m?) that m of them were judged inconclusive. Right is n/n where the row is the defender and 0/n "
    "everywhere else (real digits were never generated)."
)
RULES = {
    "trainprove": "TrainProVe (the paper's Grubbs test; its alpha bounds false clearing only)",
    "calibrated": "the calibrated rule (false accusation <= 0.01 and false clearing <= 0.05 by its "
    "reference models; inconclusive where it cannot tell)",
}


def format_confusion(table: Mapping[str, Mapping[str, list[int]]]) -> str:
    short = [d.removeprefix("digits-") for d in DEFENDERS]
    width = 16
    lines = ["suspect trained on \\ defender".ljust(30) + "".join(s.rjust(width) for s in short)]
    for source, row in table.items():
        cells = []
        for d in DEFENDERS:
            flagged, n, unsure = row[d]
            cells.append((f"{flagged}/{n}" + (f" ({unsure}?)" if unsure else "")).rjust(width))
        lines.append(source.removeprefix("digits-").ljust(30) + "".join(cells))
    return "\n".join(lines)


def format_rates(rates: Mapping[str, Any]) -> str:
    def rate(k: int, n: int) -> str:
        return f"{k / n:.3f} ({k}/{n})" if n else "n/a"

    return (
        f"verification accuracy {rates['accuracy']:.3f}   false-accusation rate "
        f"{rate(rates['false_accusations'], rates['negatives'])}   false-clearing rate "
        f"{rate(rates['false_clearings'], rates['positives'])}   inconclusive "
        f"{rate(round(rates['abstention_rate'] * rates['suspects']), rates['suspects'])}"
    )


def write_pool_manifest(pool: Sequence[Any], out_dir: Path) -> None:
    """`suspects.json` and `suspects.md`: each suspect's name, training source and checkpoint, so a user
    can audit one by hand (`use = "timm"`, `checkpoint = ...`)."""
    rows = [{"name": s.name, "source": s.source, "checkpoint": str(s.checkpoint)} for s in pool]
    (out_dir / "suspects.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    lines = [
        "# The demo's suspects",
        "",
        "Each is a timm checkpoint (config.json + model.safetensors) in the demo's store; audit one by hand",
        'with `[[suspect]] use = "timm"` and `checkpoint = "<the path below>"`.',
        "",
        "| suspect | trained on | checkpoint |",
        "|---|---|---|",
    ] + [f"| {r['name']} | {r['source']} | `{r['checkpoint']}` |" for r in rows]
    (out_dir / "suspects.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_demo(
    plugins: PluginSet, out_dir: Path, store_dir: Path, hard: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    """Build the pool, run one audit per defender, print the confusion table and rates, write
    `summary.json` and `summary.md` under `out_dir`; return the summary."""
    started = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(store_dir)
    task = Task(CLASSES, IMAGE_SIZE)
    ws = Workspace.open(task, plugins, store, show_progress)
    click.echo(
        f"trainprove demo{' --hard' if hard else ''}: {len(SOURCES)} sources, {len(DEFENDERS)} defenders "
        f"(cache: {store.root})"
    )
    verdicts: list[dict[str, Any]] = []
    # The pool's steps (a set per source, a model per suspect); each audit adds its own.
    with progress.plan(len(SOURCES) * (1 + len(SUSPECT_VARIANTS)), "demo", show_progress):
        pool = build_pool(ws, hard)
        sources = {s.name: s.source for s in pool}
        write_pool_manifest(pool, out_dir)
        click.echo(
            f"  suspect pool ready: {len(pool)} timm classifiers ({time.time() - started:.0f} s); "
            f"their checkpoints: {out_dir / 'suspects.md'}"
        )
        for defender in DEFENDERS:
            doc = audit_document(defender, pool, hard)
            audit_dir = out_dir / defender
            audit_dir.mkdir(parents=True, exist_ok=True)
            (audit_dir / "audit.toml").write_text(toml_dumps(doc), encoding="utf-8")
            config = config_from_dict(doc, plugins, source=str(audit_dir / "audit.toml"), base_dir=audit_dir)
            result = run_audit(config, plugins, audit_dir, store, show_progress)
            verdicts += [{**v, "defender": defender} for v in result.report["verdicts"]]
            right = sum(bool(v["correct"]) for v in result.report["verdicts"])
            click.echo(
                f"  defender {defender:<12} {right}/{len(result.report['verdicts'])} verdicts right "
                f"({time.time() - started:.0f} s)"
            )
    tables = {rule: confusion([v for v in verdicts if v["test"] == rule], sources) for rule in RULES}
    rates = {rule: summarise([v for v in verdicts if v["test"] == rule]) for rule in RULES}
    summary = {
        "hard": hard,
        "wall_seconds": round(time.time() - started, 1),
        "confusion": tables["trainprove"],
        "confusions": tables,
        **rates,
        "verdicts": verdicts,
        "reports": {d: str(out_dir / d / "report.html") for d in DEFENDERS},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    sections = [
        f"{RULES[rule]}:\n\n{format_confusion(tables[rule])}\n\n{format_rates(rates[rule])}" for rule in RULES
    ]
    text = "\n\n".join(sections)
    (out_dir / "summary.md").write_text(
        f"# trainprove demo{' --hard' if hard else ''}\n\n{EXPLAIN}\n\n```\n{text}\n```\n\n"
        f"wall time {summary['wall_seconds']} s; reports: "
        + ", ".join(f"[{d}]({d}/report.html)" for d in DEFENDERS)
        + "; suspects: [suspects.md](suspects.md)\n",
        encoding="utf-8",
    )
    click.echo("\n" + EXPLAIN + "\n\n" + text)
    click.echo(
        f"\nsummary: {out_dir / 'summary.md'}   reports: {out_dir}/<defender>/report.html   "
        f"({summary['wall_seconds']:.0f} s)"
    )
    return summary
