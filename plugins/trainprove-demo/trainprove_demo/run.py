"""`trainprove demo`: build the pool, audit it as a fleet (every defender a candidate), print and write the
summary."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from trainprove_core import PluginSet, Store, Task, Workspace, progress
from trainprove_core.fleet import (
    EXPLAIN,
    fleet_from_dict,
    format_confusion,
    format_rates,
    run_fleet,
    summary_lines,
    toml_dumps,
)

from .pool import WORLDS, build_pool, fleet_document, pool_size

RULES = {
    "trainprove": "TrainProVe (the paper's Grubbs test; its alpha bounds false clearing only)",
    "calibrated": "the calibrated rule (false accusation <= 0.01 and false clearing <= 0.05 by its "
    "reference models; inconclusive where it cannot tell)",
}


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


def default_executor() -> str:
    """`processes` where this process may use two cores or more: the demo's time is trainings on one
    thread each and image sets of small networks, which worker processes run two at a time faster than
    one process on two threads (docs/scale.md: 142 s against 198 s on two cores); else `local`."""
    from trainprove_core import threads

    return "processes" if threads.usable_cores() >= 2 else "local"


def run_demo(
    plugins: PluginSet,
    out_dir: Path,
    store_dir: Path,
    hard: bool = False,
    show_progress: bool = True,
    executor: str | None = None,
    world: str = "digits",
) -> dict[str, Any]:
    """Build `world`'s pool, audit it as a fleet (one audit per defender, on `executor`), print the
    confusion table and rates, write `summary.json` and `summary.md` (and the fleet's attribution report)
    under `out_dir`; return the summary."""
    started = time.time()
    w = WORLDS[world]
    title = (
        "trainprove demo" + ("" if world == "digits" else f" --world {world}") + (" --hard" if hard else "")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    store = Store(store_dir)
    task = Task(w.classes, w.image_size)
    # One executor (one Ray cluster) trains the pool and runs every audit; closed when the fleet ends.
    with Workspace.open(task, plugins, store, show_progress, executor=executor or default_executor()) as ws:
        click.echo(f"{title}: {len(w.sources)} sources, {len(w.defenders)} defenders (cache: {store.root})")
        # The pool's steps (a set per source, a model per suspect); the fleet and each audit add their own.
        kinds = {"generate": len(w.sources), "train": pool_size(world)}
        with progress.plan(sum(kinds.values()), "demo", show_progress, kinds=kinds):
            pool = build_pool(ws, hard, world)
            write_pool_manifest(pool, out_dir)
            click.echo(
                f"  suspect pool ready: {len(pool)} timm classifiers ({time.time() - started:.0f} s); "
                f"their checkpoints: {out_dir / 'suspects.md'}"
            )
            document = fleet_document(pool, hard, executor=executor, world=world)
            (out_dir / "fleet.toml").write_text(toml_dumps(document), encoding="utf-8")
            fleet = fleet_from_dict(document, plugins, source=str(out_dir / "fleet.toml"), base_dir=out_dir)
            result = run_fleet(
                fleet,
                plugins,
                out_dir,
                store,
                show_progress,
                echo=click.echo,
                started=started,
                executor=ws.executor,
            )
    by_test = result.attribution["by_test"]
    summary = {
        "world": world,
        "hard": hard,
        "wall_seconds": round(time.time() - started, 1),
        "confusion": by_test["trainprove"]["confusion"],
        "confusions": {rule: by_test[rule]["confusion"] for rule in RULES},
        **{rule: by_test[rule]["rates"] for rule in RULES},
        "verdicts": result.attribution["verdicts"],
        "reports": {d: str(out_dir / d / "report.html") for d in w.defenders},
        "attribution": str(out_dir / "attribution.md"),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    sections = [
        f"{RULES[rule]}:\n\n{format_confusion(by_test[rule]['confusion'], w.short)}\n\n"
        f"{format_rates(by_test[rule]['rates'])}"
        for rule in RULES
    ]
    text = "\n\n".join(sections)
    real = "real digits" if world == "digits" else f"real images ({w.real})"
    explain = EXPLAIN.removesuffix(".") + f" ({real} were never generated)."
    (out_dir / "summary.md").write_text(
        f"# {title}\n\n{explain}\n\n```\n{text}\n```\n\n"
        f"wall time {summary['wall_seconds']} s; attribution of every suspect: "
        "[attribution.md](attribution.md) ([index.html](index.html)); reports: "
        + ", ".join(f"[{d}]({d}/report.html)" for d in w.defenders)
        + "; suspects: [suspects.md](suspects.md)\n",
        encoding="utf-8",
    )
    click.echo("\n" + explain + "\n\n" + text)
    click.echo("\n" + summary_lines(result.attribution)[-1])
    click.echo(
        f"\nsummary: {out_dir / 'summary.md'}   attribution: {out_dir / 'attribution.md'}   reports: "
        f"{out_dir}/<defender>/report.html   ({summary['wall_seconds']:.0f} s)"
    )
    return summary
