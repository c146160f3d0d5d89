"""`trainprove store verify` and `trainprove store gc`: check the store's content hashes, quarantine what
is damaged, and sweep what killed runs left behind (docs/store.md).

Exit codes: `verify` 0 when every entry is intact, 1 when some are damaged (with `--repair`: quarantined,
to be made again by the next audit that needs them) or not readable by this user (a store shared between
users: never called damaged, never quarantined), 2 for bad input (no store there); `gc` 0, or 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .checks import number
from .cli_options import cli, store_option
from .errors import InputError


def _open(store_dir: Path | None):
    from .store import Store, default_store_root

    store = Store(store_dir or default_store_root())
    if not store.root.is_dir():
        raise InputError(f"{store.root}: no store there (give --store DIR or set $TRAINPROVE_STORE)")
    return store


def _relative(store, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.relative_to(store.root).as_posix()
    except ValueError:
        return str(path)


@cli.group()
def store() -> None:
    """Check and tidy the store (the cache of image sets, models and answers)."""


@store.command()
@store_option
@click.option(
    "--repair",
    is_flag=True,
    help="Move damaged entries to the store's quarantine/ folder; the next audit that needs one makes it "
    "again (for paid answers: asks the suspect again, which costs queries).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
@click.pass_context
def verify(ctx: click.Context, store_dir: Path | None, repair: bool, as_json: bool) -> None:
    """Check every entry's files against the SHA-256 recorded when it was committed, and every saved
    chunk against its own digest; list the damaged ones by path.

    Exit code 0 when all are intact, 1 when some are damaged (also with --repair), 2 for bad input.
    """
    the_store = _open(store_dir)
    quarantine = the_store.root / "quarantine"
    if repair and quarantine.exists() and not quarantine.is_dir():
        raise InputError(
            f"{quarantine}: is a file, where --repair moves damaged entries (a folder); move it away and "
            "run again (nothing was checked or moved)"
        )
    started = time.perf_counter()
    checked, problems = the_store.verify(repair=repair)
    denied = [p for p in problems if p.denied and not p.quarantined and p.reason == "permission denied"]
    problems = [p for p in problems if p not in denied]
    seconds = time.perf_counter() - started
    records = [
        {
            "path": _relative(the_store, p.path),
            "kind": p.kind,
            "reason": p.reason,
            "paid": p.paid,
            "rows": p.rows,
            "quarantined": _relative(the_store, p.quarantined),
            "busy": p.busy,
            "denied": p.denied,
        }
        for p in problems
    ]
    unreadable = [{"path": _relative(the_store, p.path), "kind": p.kind, "why": p.denied} for p in denied]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "store": str(the_store.root),
                    "checked": checked,
                    "seconds": round(seconds, 3),
                    "damaged": records,
                    "unreadable": unreadable,
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"{the_store.root}: {checked} entries checked in {seconds:.2f} s, {len(problems)} damaged"
            + (f", {len(denied)} not readable by this user (not damaged)" if denied else "")
        )
        for p in denied:
            click.secho(f"unreadable  {_relative(the_store, p.path)}", fg="yellow")
            click.echo(f"         {p.denied}")
        for p in problems:
            click.secho(f"damaged  {_relative(the_store, p.path)}  {p.reason}", fg="red")
            click.echo(f"         {_consequence(p, repair)}")
        if problems and not repair:
            where = f" --store {store_dir}" if store_dir else ""
            click.echo(
                f"run `trainprove store verify --repair{where}` to quarantine them; the next audit that "
                "needs one makes it again."
            )
    if problems or denied:
        ctx.exit(1)


def _consequence(problem, repair: bool) -> str:
    """What happens to a damaged entry, in words."""
    what = {
        "models": "trains the model again",
        "image-sets": "generates the images again",
        "answers": "asks the model again",
    }.get(problem.kind, "makes it again")
    if problem.paid or (problem.paid is None and problem.kind == "answers"):
        rows = f"{problem.rows} queries" if problem.rows else "queries"
        sure = "" if problem.paid else " if they came from a remote suspect"
        what = f"asks the suspect again, which costs {rows}{sure}"
    if problem.busy:
        return f"left alone: {problem.busy} is building it; run verify again when it is done"
    if problem.denied:
        return f"left where it is: {problem.denied}"
    if repair:
        return f"quarantined to {problem.quarantined}; the next audit that needs it {what}"
    if problem.paid:
        return f"paid answers: an audit stops this suspect until you run --repair (then it {what})"
    return f"the next audit that needs it quarantines it by itself and {what}"


@store.command()
@store_option
@click.option(
    "--unused-days",
    type=number(float, min=0),
    default=None,
    metavar="DAYS",
    help="Also remove finished entries not read for DAYS days (paid answers are kept, see --include-paid; "
    "entries read within the last hour are kept, see --include-recent).",
)
@click.option("--include-paid", is_flag=True, help="With --unused-days, remove unused paid answers too.")
@click.option(
    "--include-recent",
    is_flag=True,
    help="With --unused-days, remove entries read within the last hour too (an audit running now may "
    "be reading them).",
)
@click.option("--empty-quarantine", is_flag=True, help="Also delete everything in quarantine/.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for machines.")
def gc(
    store_dir: Path | None,
    unused_days: float | None,
    include_paid: bool,
    include_recent: bool,
    empty_quarantine: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove what killed runs left: temporary files and folders whose builder is dead, chunk folders and
    training checkpoints of finished entries, free lock files. Unfinished work whose builder died is kept
    (the next run resumes from it). Options remove unused entries and the quarantine.

    Exit code 0, or 2 for bad input.
    """
    the_store = _open(store_dir)
    removed = {"orphans": the_store.sweep(dry_run=dry_run)}
    if unused_days is not None:
        from .store import RECENT

        kept_recent: list[Path] = []
        removed["unused"] = the_store.remove_unused(
            unused_days, include_paid, dry_run, keep_recent=0 if include_recent else RECENT, kept=kept_recent
        )
        if kept_recent and not as_json:
            click.echo(
                f"kept {len(kept_recent)} entries read within the last hour (--include-recent removes "
                "them too)"
            )
    if empty_quarantine:
        removed["quarantine"] = the_store.empty_quarantine(dry_run)
    listed = {what: [_relative(the_store, p) for p in paths] for what, paths in removed.items()}
    if as_json:
        click.echo(
            json.dumps({"store": str(the_store.root), "dry_run": dry_run, "removed": listed}, indent=2)
        )
        return
    verb = "would remove" if dry_run else "removed"
    for what, paths in listed.items():
        click.echo(f"{verb} {len(paths)} {what}")
        for path in paths:
            click.echo(f"  {path}")
