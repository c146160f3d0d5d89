"""A Markdown page per plugin distribution, generated from what its plugins declare.

    python -m trainprove_core.docgen docs/plugins            # the built-in distributions (in a checkout)
    python -m trainprove_core.docgen docs/plugins --check    # exit 1 when a page is missing or stale
    python -m trainprove_core.docgen out/ --distribution my-plugin   # your own package's page

Each page lists what the distribution registers (generators, suspect adapters, shadow trainers, decision
tests, executors) with every audit-file key it owns (type, default or "required", choices, secret, help),
the commands it adds (their `--help`), and the hooks it implements. `index.md` links the pages.

It is a module of the core, not a script under docs/, so that third-party plugin authors can run it on
their own distribution, and tests can import it; `trainprove` itself never imports it (the CLI's start-up
path stays as light as it is).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .listing import option_bounds, toml_value
from .plugins import (
    CORE_DISTRIBUTION,
    DISABLE_ENV,
    LOAD_ENV,
    PluginInfo,
    PluginSet,
    Registered,
    by_kind,
    load_plugins,
    normalize,
)
from .records import KIND, Option

ROOT = Path(__file__).resolve().parent.parent
"""The checkout this module lives in (its `plugins/` folder holds the built-in distributions)."""
REFRESH = "python -m trainprove_core.docgen docs/plugins"
HELP_WIDTH = 100


def _project_name(pyproject: Path) -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]


def builtin_distributions(root: Path = ROOT) -> dict[str, str]:
    """The distributions shipped in this checkout, each with its source folder relative to `root`: the
    core, and every `plugins/*/pyproject.toml`."""
    out = {CORE_DISTRIBUTION: "trainprove_core"}
    for pyproject in sorted(root.glob("plugins/*/pyproject.toml")):
        out[_project_name(pyproject)] = pyproject.parent.relative_to(root).as_posix()
    return out


@contextmanager
def _every_plugin() -> Iterator[None]:
    """Pages describe what is installed, whatever TRAINPROVE_DISABLE/LOAD_PLUGINS say in this shell."""
    saved = {k: os.environ.pop(k) for k in (DISABLE_ENV, LOAD_ENV) if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"``{text}``" if "`" in text else f"`{text}`"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?" else text + "."


def _option_row(option: Option) -> str:
    if option.required:
        default = "**required**"
    elif option.default is None:
        default = "none"
    else:
        default = _code(toml_value(option.default))
    meaning = []
    if option.secret:
        meaning.append("**Secret**: kept out of reports, manifests and cache keys.")
    if option.help:
        meaning.append(_sentence(option.help))
    if option.choices:
        meaning.append("One of " + ", ".join(_code(toml_value(c)) for c in option.choices) + ".")
    if option_bounds(option):
        meaning.append(option_bounds(option)[0].upper() + option_bounds(option)[1:] + ".")
    return f"| `{option.name}` | {option.type} | {default} | {_cell(' '.join(meaning))} |"


def _registration(reg: Registered) -> list[str]:
    kind = KIND[reg.kind]
    lines = [
        f"### `{reg.name}`",
        "",
        _cell(_sentence(reg.spec.description)),
        "",
    ]
    select = [kind.selector]
    if reg.kind == "suspect":
        select.append('name = "my-suspect"')
    select.append(f"{kind.use_key} = {toml_value(reg.name)}")
    lines += ["```toml", *select, "```", ""]
    classes = getattr(reg.spec, "classes", None)
    if classes:
        lines += [
            "Conditioned on the class index: `[task] classes` must be exactly "
            + ", ".join(_code(toml_value(c)) for c in classes)
            + ", in this order.",
            "",
        ]
    required = [o.name for o in reg.spec.options if o.required]
    if required:
        lines += ["Required keys: " + ", ".join(f"`{k}`" for k in required) + ".", ""]
    if reg.spec.options:
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        lines += [_option_row(o) for o in reg.spec.options]
    else:
        lines.append("No keys of its own.")
    lines.append("")
    return lines


def _command_help(plugin_set: PluginSet, info: PluginInfo) -> list[str]:
    group = plugin_set.commands_of(info.name)
    if group is None or not group.commands:
        return []
    import click

    lines = ["## Commands", ""]
    parent = click.Context(
        group,
        info_name="trainprove",
        terminal_width=HELP_WIDTH,
        max_content_width=HELP_WIDTH,
        help_option_names=["-h", "--help"],
    )
    for name in sorted(group.commands):
        command = group.commands[name]
        ctx = click.Context(command, info_name=name, parent=parent)
        lines += [f"### `trainprove {name}`", "", "```text", command.get_help(ctx).rstrip(), "```", ""]
    return lines


def _header(title: str, command: str = REFRESH) -> list[str]:
    return [
        f"<!-- Generated by `{command}` from what the plugins declare; edit the plugin, not this page. -->",
        "",
        f"# {title}",
        "",
    ]


def _summary(regs: Sequence[Registered]) -> str:
    parts = []
    for kind, members in by_kind(regs):
        noun = kind.singular if len(members) == 1 else kind.plural
        parts.append(f"{noun} " + ", ".join(f"`{r.name}`" for r in members))
    return "; ".join(parts)


def render_page(
    plugin_set: PluginSet, distribution: str, source: str | None = None, command: str = REFRESH
) -> str:
    infos = [p for p in plugin_set.plugins.values() if normalize(p.distribution) == normalize(distribution)]
    infos.sort(key=lambda p: p.name)
    regs = [r for r in plugin_set.all_registered() if normalize(r.distribution) == normalize(distribution)]
    lines = _header(f"`{distribution}`", command)
    summary = next((p.summary for p in infos if p.summary), "")
    if summary:
        lines += [summary, ""]
    if source:
        lines += [f"Source: [`{source}/`](../../{source}/).", ""]
    for info in infos:
        hooks = ", ".join(f"`{h}`" for h in plugin_set.hooks_of(info.name)) or "none"
        lines.append(f"- entry point `{info.entry_point} = {info.value}`; hooks: {hooks}")
    lines.append("")
    registers = _summary(regs)
    commands = sorted(
        name for info in infos for name in getattr(plugin_set.commands_of(info.name), "commands", {})
    )
    if commands:
        word = "command" if len(commands) == 1 else "commands"
        registers += (
            ("; " if registers else "") + f"{word} " + ", ".join(f"`trainprove {c}`" for c in commands)
        )
    lines += [f"Registers: {registers or 'nothing (it only observes audits)'}.", ""]
    if regs:
        lines.append(
            "Every key below goes in the audit-file table that selects the plugin, next to `use` "
            "([docs/audit-file.md](../audit-file.md) lists the core's own keys); "
            "`trainprove plugins NAME` prints the same from the installed version."
        )
        lines.append("")
    for kind, members in by_kind(regs):
        lines += [f"## {kind.title}", ""]
        for reg in members:
            lines += _registration(reg)
    for info in infos:
        lines += _command_help(plugin_set, info)
    return "\n".join(lines).rstrip() + "\n"


def render_index(plugin_set: PluginSet, distributions: dict[str, str | None], command: str = REFRESH) -> str:
    lines = _header("Plugins", command)
    lines += [
        "A page per plugin distribution, generated from the options each plugin declares: every "
        "audit-file key with its type, default, choices and meaning, and the commands it adds.",
        "",
        "| distribution | registers | page |",
        "|---|---|---|",
    ]
    for dist in distributions:
        regs = [r for r in plugin_set.all_registered() if normalize(r.distribution) == normalize(dist)]
        infos = [p for p in plugin_set.plugins.values() if normalize(p.distribution) == normalize(dist)]
        registers = _summary(regs)
        commands = sorted(c for p in infos for c in getattr(plugin_set.commands_of(p.name), "commands", {}))
        if commands:
            registers += ("; " if registers else "") + ", ".join(f"`trainprove {c}`" for c in commands)
        label = f"`{dist}` (core)" if dist == CORE_DISTRIBUTION else f"`{dist}`"
        lines.append(f"| {label} | {registers or '—'} | [{dist}.md]({dist}.md) |")
    return "\n".join(lines) + "\n"


def render_pages(
    distributions: dict[str, str | None] | None = None, command: str = REFRESH
) -> dict[str, str]:
    """`{file name: text}` for every distribution (default: the built-in ones) plus `index.md`; `command`
    is the one each page says it was generated by.

    Raises `SystemExit` with a message when a distribution is not installed or a plugin fails to load.
    """
    distributions = builtin_distributions() if distributions is None else distributions
    with _every_plugin():
        plugin_set = load_plugins(strict=True)
    installed = {normalize(p.distribution) for p in plugin_set.plugins.values()}
    missing = [d for d in distributions if normalize(d) not in installed]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (run `make install`, or pip install -e them)")
    pages = {
        f"{dist}.md": render_page(plugin_set, dist, source, command) for dist, source in distributions.items()
    }
    pages["index.md"] = render_index(plugin_set, distributions, command)
    return pages


def compare(pages: dict[str, str], out_dir: Path) -> list[str]:
    """What differs between `pages` and the Markdown files in `out_dir`: missing, stale or extra pages."""
    problems = []
    for name, text in pages.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} is stale")
    for path in sorted(out_dir.glob("*.md")):
        if path.name not in pages:
            problems.append(f"{path} describes no installed distribution")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainprove_core.docgen", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out_dir", nargs="?", default="docs/plugins", type=Path)
    parser.add_argument(
        "--distribution",
        action="append",
        default=None,
        help="document this distribution (repeatable; default: the built-in ones of this checkout)",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page differs")
    args = parser.parse_args(argv)
    distributions = None if args.distribution is None else dict.fromkeys(args.distribution)
    command = "python -m trainprove_core.docgen " + args.out_dir.as_posix()
    command += "".join(f" --distribution {d}" for d in args.distribution or ())
    pages = render_pages(distributions, command if distributions is not None else REFRESH)
    if args.check:
        problems = compare(pages, args.out_dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"refresh with: {command}", file=sys.stderr)
        return 1 if problems else 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        path = args.out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if distributions is None:
        for problem in compare(pages, args.out_dir):
            if "describes no installed distribution" in problem:
                print(f"warning: {problem}; delete it if the distribution is gone", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
