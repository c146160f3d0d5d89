"""The `trainprove` command line.

Starting it imports the plugins' entry-point modules (light by contract) and nothing heavy: numpy, torch
and friends load only inside the command that needs them. Errors the user can fix are printed as one
paragraph without a traceback, with exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import secrets
from .checks import number, output_folder
from .cli_options import WRITE_KEPT, cli, progress_option, store_option
from .errors import TrainproveError
from .plugins import PluginSet, load_plugins

if TYPE_CHECKING:
    from .engine import AuditReport


def _plugins(ctx: click.Context) -> PluginSet:
    obj = ctx.ensure_object(dict)
    if "plugins" not in obj:
        obj["plugins"] = load_plugins()
    return obj["plugins"]


@cli.command()
@click.argument("audit_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for report.json and report.html [default: runs/<audit file name>].",
)
@store_option
@progress_option
@click.option(
    "--html/--no-html",
    "write_html",
    default=True,
    help="Write report.html too [default], or report.json only (`trainprove report DIR` renders it later).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the verdicts as one JSON document on stdout (everything else goes to stderr).",
)
@click.pass_context
def audit(
    ctx: click.Context,
    audit_file: Path,
    out_dir: Path | None,
    store_dir: Path | None,
    progress: bool,
    write_html: bool,
    as_json: bool,
) -> None:
    """Run the audit described in AUDIT_FILE and write its report.

    Everything expensive is cached: re-running with one more suspect only queries that suspect, and an
    interrupted run resumes where it stopped. Exit code 1 when a suspect could not be queried (the others
    are still judged), 2 for bad input.
    """
    from .config import load_config
    from .engine import run_audit
    from .store import Store, default_store_root

    plugins = _plugins(ctx)
    config = load_config(audit_file, plugins)
    out_dir = out_dir or Path("runs") / audit_file.stem
    output_folder(out_dir, "--out")
    result = run_audit(
        config, plugins, out_dir, Store(store_dir or default_store_root()), progress, html=write_html
    )
    if as_json:
        click.echo(secrets.redact(json.dumps(verdicts_document(result.report, out_dir), indent=1)))
    else:
        echo_verdicts(result.report)
    for error in result.errors:
        click.secho(f"error: {error}", fg="red", err=True)
    for error in result.observer_errors:
        click.secho(f"warning: {error}", fg="yellow", err=True)
    if write_html:
        click.echo(f"report: {out_dir / 'report.html'}  (JSON: {out_dir / 'report.json'})", err=as_json)
    else:
        click.echo(f"report: {out_dir / 'report.json'}  (HTML: trainprove report {out_dir})", err=as_json)
    from .accounting import summary_line

    click.echo(summary_line(result.report), err=as_json)
    if result.errors:
        ctx.exit(1)


@cli.command()
@click.argument("audit_file", type=click.Path(dir_okay=False, path_type=Path))
@store_option
@click.pass_context
def check(ctx: click.Context, audit_file: Path, store_dir: Path | None) -> None:
    """Check AUDIT_FILE as `trainprove audit` does before any work, and do nothing else.

    Every key of every table (the core's and each plugin's), every decision test's settings, each
    suspect's checkpoint and label space, and whether the image sets fit in memory and on the store's
    disk. Exit code 0 when the audit would start, 2 with the file, table and key of the first problem.
    Then what the audit will do: every image set it makes, every model it trains (the decision tests'
    reference models included) and every image each suspect answers.
    """
    from .config import load_config
    from .engine import AuditRun
    from .store import Store, default_store_root

    plugins = _plugins(ctx)
    config = load_config(audit_file, plugins)
    with AuditRun(config, plugins, Store(store_dir or default_store_root()), show_progress=False) as run:
        run.open_suspects(cache=False)  # writes nothing, not even the cache of weight hashes
        run.close_adapters()
        workload = run.workload()
    click.echo(f"{audit_file}: ok: {len(config.suspects)} suspect(s), {len(config.tests)} decision test(s)")
    for line in workload:
        click.echo(f"  {line}")


VERDICT_FIELDS = ("suspect", "test", "decision", "p_value", "alpha", "statistic", "threshold", "explanation")


def verdicts_document(report: AuditReport, out_dir: Path) -> dict[str, Any]:
    """What `trainprove audit --json` prints: each verdict's decision and its figures, the errors and
    warnings, and where the whole report is."""
    return {
        "report": str(out_dir / "report.json"),
        "verdicts": [{k: v.get(k) for k in VERDICT_FIELDS} for v in report.verdicts],
        "errors": list(report.errors),
        "warnings": list(report.warnings),
    }


def echo_verdicts(report: AuditReport) -> None:
    """One line per verdict (an inconclusive one says why, on the next line), then the finding as
    report.html's first screen states it: the governing rule, and one sentence per suspect."""
    from .report.finding import findings, governing_test
    from .report.words import SHORT

    width = max([len(v["suspect"]) for v in report.verdicts] + [8])
    for v in report.verdicts:
        click.echo(f"{v['suspect']:>{width}}  {v['test']:<18} {SHORT.get(v['decision'], v['decision'])}")
        if v["decision"] == "inconclusive":
            reason = v["explanation"].removeprefix(f"{v['suspect']}: ")
            click.echo(f"{'':>{width}}  {'':<18} why: {reason}")
    governing = governing_test(report)
    if report.verdicts and governing.test is not None:
        click.echo(f"finding, by the rule {governing.test} ({governing.why}):")
        for found in findings(report, governing):
            click.echo(f"  {found.sentence}")
            if found.disagreements:
                other = ", ".join(f"{o['test']} says {SHORT.get(o['decision'])}" for o in found.disagreements)
                click.echo(f"    other rules disagree: {other}")
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--options", "show_options", is_flag=True, help="Show every audit-file key of each plugin.")
@click.option(
    "--hook",
    metavar="HOOK",
    default=None,
    help="Only plugins that implement HOOK (e.g. trainprove_commands, or just commands).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records for machines.")
@click.pass_context
def plugins(
    ctx: click.Context, names: tuple[str, ...], show_options: bool, hook: str | None, as_json: bool
) -> None:
    """List installed plugins: what each registers (generators, suspect adapters, shadow trainers,
    decision tests, executors), the hooks each implements, from which distribution and version, and any
    that failed to load or collide.

    NAME (a plugin, a distribution or a registered name such as a generator) shows only that, with every
    audit-file key it owns: type, default, choices and help. TRAINPROVE_DISABLE_PLUGINS=a,b and
    TRAINPROVE_LOAD_PLUGINS=a,b choose plugins by distribution name; TRAINPROVE_STRICT_PLUGINS=1 makes a
    plugin that fails to load an error.
    """
    from .listing import json_records, render_text, select

    plugin_set = _plugins(ctx)
    selection = select(plugin_set, names, hook)
    if as_json:
        click.echo(json.dumps(json_records(plugin_set, selection), indent=2))
        return
    styles = {"title": {"bold": True}, "problem": {"fg": "red"}}
    everything = not names and hook is None
    lines = render_text(plugin_set, selection, show_options or bool(names), everything, details=bool(names))
    for style, line in lines:
        click.secho(line, **styles.get(style, {}))


@cli.command()
@click.argument("audit_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "sets",
    type=click.Choice(["shadow", "validation"]),
    multiple=True,
    default=("shadow", "validation"),
    show_default=True,
    help="Which image sets to make.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the preview sheets go [default: runs/<audit file name>].",
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write each set as files: EXPORT/shadow and EXPORT/validation, one folder per class of PNGs "
    "and a manifest.json (ImageFolder layout).",
)
@store_option
@progress_option
@click.pass_context
def generate(
    ctx: click.Context,
    audit_file: Path,
    sets: tuple[str, ...],
    out_dir: Path | None,
    export_dir: Path | None,
    store_dir: Path | None,
    progress: bool,
) -> None:
    """Make an audit's image sets (into the cache) and write a preview sheet of each.

    Use it to look at what the generator makes before paying for an audit; the audit then finds the sets
    in the cache. With --export, the sets are written as files too: the audit's images, byte for byte.
    """
    from .config import load_config
    from .engine import AuditRun, preview_sheet
    from .store import Store, default_store_root

    plugins = _plugins(ctx)
    config = load_config(audit_file, plugins)
    out_dir = out_dir or Path("runs") / audit_file.stem
    output_folder(out_dir, "--out")
    if export_dir is not None:
        output_folder(export_dir, "--export")
    with AuditRun(config, plugins, Store(store_dir or default_store_root()), progress) as run:
        out_dir.mkdir(parents=True, exist_ok=True)
        for role in sets:
            image_set = run.shadow_set if role == "shadow" else run.validation
            sheet = out_dir / f"{role}-preview.png"
            try:
                preview_sheet(image_set, config.task, sheet)
            except OSError as exc:
                from .store import cannot_write

                raise cannot_write(sheet, exc, WRITE_KEPT) or exc from None
            click.echo(f"{role}: {len(image_set)} images (key {image_set.key}); preview: {sheet}")
            if export_dir is not None:
                from .export import export_image_set

                cfg = config.shadow if role == "shadow" else config.validation
                export_image_set(image_set, config.task, cfg, export_dir / role, config.generator.use)
                click.echo(f"{role}: exported to {export_dir / role} (ImageFolder layout, manifest.json)")


@cli.command()
@click.argument("generator")
@click.option(
    "--classes",
    default=None,
    metavar="A,B,C",
    help="Class names, comma-separated [default: the generator's own, for one conditioned on classes].",
)
@click.option("--per-class", type=number(int, min=1), required=True, help="Images per class.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the images go: one folder per class of PNGs and a manifest.json (ImageFolder layout).",
)
@click.option(
    "--prompt",
    default="a photo of a {label}",
    show_default=True,
    help="Prompt template; {label} is the class name.",
)
@click.option(
    "--seed",
    type=number(int, min=0, max=2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the set (an audit's [validation] seed makes that set's images).",
)
@click.option(
    "--image-size",
    type=number(int, min=4),
    default=None,
    help="Side of the images [default: the generator's].",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A key of the generator's table (`trainprove plugins GENERATOR` lists them); VALUE is read as TOML "
    "where it is a TOML value. Repeat for more.",
)
@store_option
@progress_option
@click.pass_context
def sample(
    ctx: click.Context,
    generator: str,
    classes: str | None,
    per_class: int,
    out_dir: Path,
    prompt: str,
    seed: int,
    image_size: int | None,
    settings: tuple[str, ...],
    store_dir: Path | None,
    progress: bool,
) -> None:
    """Make PER_CLASS images of each class with GENERATOR, without an audit file, and write them to OUT.

    The images are made and cached exactly as an audit's set with the same generator settings, prompt,
    seed, size and classes would be (image j of a class depends on the seed, its prompt and j only).
    """
    from .export import parse_settings
    from .export import sample as make_sample
    from .store import Store, default_store_root

    names = None if classes is None else tuple(c.strip() for c in classes.split(",") if c.strip())
    output_folder(out_dir, "--out")
    manifest = make_sample(
        _plugins(ctx),
        Store(store_dir or default_store_root()),
        generator,
        out_dir,
        classes=names,
        per_class=per_class,
        prompt=prompt,
        seed=seed,
        image_size=image_size,
        settings=parse_settings(settings),
        show_progress=progress,
    )
    click.echo(
        f"{len(manifest['images'])} images of {len(manifest['classes'])} classes (key {manifest['key']}) "
        f"in {out_dir} (ImageFolder layout, manifest.json)"
    )


@cli.command()
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print a JSON Schema (draft 2020-12) of audit files, for the plugins installed.

    Editors validate and complete audit files with it: `trainprove schema > audit.schema.json`, then
    `#:schema ./audit.schema.json` as the first line of an audit file (taplo, Even Better TOML). Every
    key's type, bounds, choices, default and help come from the core and the plugins' declared options.
    """
    from .schema import audit_schema

    click.echo(json.dumps(audit_schema(_plugins(ctx)), indent=2))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--pdf", is_flag=True, help="Print it to report.pdf too, every detail open (needs a headless Chromium)."
)
def report(run_dir: Path, pdf: bool) -> None:
    """Render RUN_DIR/report.html again from RUN_DIR/report.json (report.json is not changed).

    Milliseconds per verdict: use it after `trainprove audit --no-html`, or to see an old run in the
    current layout. A RUN_DIR without report.json whose folders hold reports (the demo's defenders) gets
    RUN_DIR/index.html, linking each and showing their decisions side by side. With --pdf, also
    report.pdf (index.pdf), printed by a headless Chromium with every detail open and every chart.
    """
    import time

    from .errors import InputError
    from .report import print_pdf, write_html, write_index, write_pdf
    from .report.reading import as_report

    output_folder(run_dir, "RUN_DIR")
    path = run_dir / "report.json"
    runs = sorted(p.parent for p in run_dir.glob("*/report.json"))
    if not path.exists() and runs:
        index = write_index(run_dir, runs, title=f"trainprove audits in {run_dir.name or run_dir}")
        click.echo(f"index: {index}  ({len(runs)} reports)")
        if pdf:
            click.echo(f"pdf: {print_pdf(index.read_text(encoding='utf-8'), run_dir / 'index.pdf')}")
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; `trainprove audit` writes it") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("verdicts"), list):
        raise InputError(f"{path}: not a trainprove report (no `verdicts` list)")
    started = time.perf_counter()
    typed = as_report(data)
    html_path = write_html(typed, run_dir)
    seconds = time.perf_counter() - started
    click.echo(f"report: {html_path}  ({len(typed.verdicts)} verdicts in {seconds * 1000:.0f} ms)")
    if pdf:
        click.echo(f"pdf: {write_pdf(typed, run_dir)}")


@cli.command()
@click.argument("fleet_file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the attribution report and of each audit's [default: runs/<fleet file name>].",
)
@store_option
@click.option("--executor", default=None, help="Executor plugin to run on (replaces [executor] use).")
@progress_option
@click.option("--html/--no-html", "write_html", default=True, help="Write each audit's report.html too.")
@click.pass_context
def fleet(
    ctx: click.Context,
    fleet_file: Path,
    out_dir: Path | None,
    store_dir: Path | None,
    executor: str | None,
    progress: bool,
    write_html: bool,
) -> None:
    """Audit many suspects with several candidate generators and say, for each suspect, which
    generator's images it was trained on.

    FLEET_FILE describes the candidates (`[[generator]]`), the tasks and suspects and the shared audit
    settings (docs/fleet.md); or it is a folder of audit files, one candidate each. One audit per
    (task, candidate), cached and resumable like `trainprove audit`; writes attribution.md,
    attribution.json, index.html and every audit's report. Exit code 1 when a suspect could not be
    queried, 2 for bad input.
    """
    from .fleet import load_fleet, run_fleet, summary_lines
    from .store import Store, default_store_root

    plugins = _plugins(ctx)
    the_fleet = load_fleet(fleet_file, plugins, executor)
    out_dir = out_dir or Path("runs") / fleet_file.stem
    output_folder(out_dir, "--out")
    click.echo(
        f"fleet {fleet_file}: {len(the_fleet.suspects)} suspects, {len(the_fleet.generators)} candidates, "
        f"{len(the_fleet.audits)} audits"
    )
    store = Store(store_dir or default_store_root())
    result = run_fleet(the_fleet, plugins, out_dir, store, progress, html=write_html, echo=click.echo)
    for line in summary_lines(result.attribution):
        click.echo(line)
    for error in result.errors:
        click.secho(f"error: {error}", fg="red", err=True)
    click.echo(f"attribution: {out_dir / 'attribution.md'}  (HTML: {out_dir / 'index.html'})")
    if result.errors:
        ctx.exit(1)


from . import store_cli  # noqa: E402, F401  (registers the `trainprove store` group)


def _redacted_excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """A traceback (a bug, not a user's mistake) printed as Python would, less any secret in it."""
    import traceback

    sys.stderr.write(secrets.redact("".join(traceback.format_exception(kind, value, tb))))


def _stop_on_sigterm() -> None:
    """SIGTERM ends a run as Ctrl-C does (`Terminated`): what is done stays in the store, workers stop."""
    import signal

    from .errors import Terminated

    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)


def main() -> None:
    """Entry point: load plugins once, let them add commands (a plugin whose command hook raises is listed
    as failed), run. Every message is redacted of secrets (`trainprove_core.secrets`), a traceback too."""
    sys.excepthook = _redacted_excepthook
    _stop_on_sigterm()
    try:
        plugin_set = load_plugins()
        plugin_set.add_commands(cli)
    except TrainproveError as exc:
        click.secho(f"error: {secrets.redact(str(exc))}", fg="red", err=True)
        sys.exit(2)
    cli(obj={"plugins": plugin_set})


if __name__ == "__main__":
    main()
