"""What `trainprove plugins` prints: a plugin set, for people (aligned, wrapped) or as JSON records.

The JSON output is one list, in this order: a record per registration (`name`, `kind`, `distribution`,
`version`, `description`, `plugin`, `options`, `conflict`), a record of kind "plugin" per plugin found, and
a record of kind "failed" per plugin that failed to load. docs/hooks.md documents the shape.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PluginError
from .plugins import PluginInfo, PluginSet, Registered, by_kind, hook_name, normalize
from .records import KIND, Option

MAX_WIDTH = 100
NBSP = "\u00a0"  # joins words that must stay on one line; printed as a space


def json_safe(value: Any) -> Any:
    """`value` as JSON can hold it: tuples become lists, paths strings, anything else its repr."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def option_record(option: Option) -> dict[str, Any]:
    """One audit-file key as JSON: a required key has `default` null and `required` true; `min` and `max`
    are the declared inclusive bounds of a number (null: none declared), `exclusive_min` true where `min`
    itself is excluded."""
    return {
        "name": option.name,
        "type": option.type,
        "default": None if option.required else json_safe(option.default),
        "required": option.required,
        "help": option.help,
        "choices": None if option.choices is None else json_safe(list(option.choices)),
        "secret": bool(option.secret),
        "min": json_safe(getattr(option, "min", None)),
        "max": json_safe(getattr(option, "max", None)),
        "exclusive_min": bool(getattr(option, "exclusive_min", False)),
    }


def describe(plugin_set: PluginSet) -> list[dict[str, Any]]:
    """One JSON-able record per registration (what `trainprove plugins --json` prints first)."""
    conflicted = {(kind, name) for kind, name, _ in plugin_set.conflicts()}
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "description": r.spec.description,
            "plugin": r.plugin,
            "distribution": r.distribution,
            "version": r.version,
            "options": [option_record(o) for o in r.spec.options],
            "conflict": (r.kind, r.name) in conflicted,
            **({"classes": list(r.spec.classes)} if getattr(r.spec, "classes", None) else {}),
        }
        for r in plugin_set.all_registered()
    ]


def describe_plugins(plugin_set: PluginSet) -> list[dict[str, Any]]:
    """One JSON-able record of kind "plugin" per plugin found, loaded or not."""
    rows = []
    for info in sorted(plugin_set.plugins.values(), key=lambda p: p.name):
        try:
            commands = sorted(getattr(plugin_set.commands_of(info.name), "commands", {}))
        except Exception as exc:  # noqa: BLE001 - a listing must survive a broken command hook
            commands = []
            problem = f"its trainprove_commands hook failed: {exc!r}"
            if problem not in info.problems:
                info.problems.append(problem)
        rows.append(
            {
                "name": info.name,
                "kind": "plugin",
                "description": info.summary,
                "distribution": info.distribution,
                "version": info.version,
                "entry_point": info.entry_point,
                "value": info.value,
                "status": info.status,
                "reason": info.reason,
                "hooks": plugin_set.hooks_of(info.name),
                "registers": [
                    {"kind": r.kind, "name": r.name}
                    for r in plugin_set.all_registered()
                    if r.plugin == info.name
                ],
                "commands": commands,
                "problems": plugin_set.problems_of(info.name),
            }
        )
    return rows


def terminal_width() -> int:
    """The width to wrap at: the terminal's, at most 100 columns (at least 60)."""
    return max(60, min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns))


def toml_value(value: Any) -> str:
    """A default as it would be written in an audit file (`None`, which TOML cannot write, is `none`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if key.replace("-", "").replace("_", "").isalnum() else json.dumps(key)


def option_default(option: Option) -> str:
    return "required" if option.required else toml_value(option.default)


def option_bounds(option: Option) -> str:
    """The declared bounds of a number: "at least 1", "above 0", "at most 0.5", "from 0.0 to 1.0",
    "above 0, at most 10" ("" if none)."""
    low, high = getattr(option, "min", None), getattr(option, "max", None)
    if low is not None and getattr(option, "exclusive_min", False):
        return f"above {toml_value(low)}" + (f", at most {toml_value(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f"from {toml_value(low)} to {toml_value(high)}"
    if low is not None:
        return f"at least {toml_value(low)}"
    if high is not None:
        return f"at most {toml_value(high)}"
    return ""


def option_flags(option: Option) -> str:
    """Choices, bounds and the secret flag, for the key's first line."""
    flags = [option_bounds(option)] if option_bounds(option) else []
    if option.choices:
        flags.append("one of " + ", ".join(toml_value(c) for c in option.choices))
    if option.secret:
        flags.append("secret (kept out of reports, manifests and cache keys)")
    return "; ".join(flags)


# --------------------------------------------------------------------------------------------------------
# Choosing what to show
# --------------------------------------------------------------------------------------------------------


@dataclass
class Selection:
    plugins: list[PluginInfo]
    registrations: list[Registered]


def select(plugin_set: PluginSet, names: Sequence[str] = (), hook: str | None = None) -> Selection:
    """The plugins and registrations `trainprove plugins [NAME]... [--hook HOOK]` shows.

    A NAME is a plugin (entry-point) name, a distribution name, or a registered name (a generator, test,
    ...); a plugin or distribution brings everything it registers. `hook` keeps the plugins implementing
    it, and the registrations made through it.
    """
    plugins = sorted(plugin_set.plugins.values(), key=lambda p: p.name)
    registrations = plugin_set.all_registered()
    if names:
        wanted = {normalize(n): n for n in names}
        chosen_plugins = [
            p
            for p in plugins
            if {normalize(p.name), normalize(p.distribution), normalize(p.entry_point)} & set(wanted)
        ]
        owners = {p.name for p in chosen_plugins}
        chosen_regs = [r for r in registrations if r.plugin in owners or normalize(r.name) in wanted]
        found = {normalize(x) for p in chosen_plugins for x in (p.name, p.distribution, p.entry_point)}
        found |= {normalize(r.name) for r in chosen_regs}
        missing = [original for key, original in wanted.items() if key not in found]
        if missing:
            raise PluginError(
                f"no plugin, distribution or registered name {', '.join(map(repr, missing))}; plugins: "
                + ", ".join(p.name for p in plugins)
                + " (`trainprove plugins` lists everything)"
            )
        owners |= {r.plugin for r in chosen_regs}
        plugins = [p for p in plugins if p.name in owners]
        registrations = chosen_regs
    if hook is not None:
        full = hook_name(hook)
        plugins = [p for p in plugins if full in plugin_set.hooks_of(p.name)]
        registrations = [r for r in registrations if KIND[r.kind].hook == full]
    return Selection(plugins, registrations)


# --------------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------------


def json_records(plugin_set: PluginSet, selection: Selection) -> list[dict[str, Any]]:
    chosen = {(r.kind, r.name, r.plugin) for r in selection.registrations}
    rows = [r for r in describe(plugin_set) if (r["kind"], r["name"], r["plugin"]) in chosen]
    names = {p.name for p in selection.plugins}
    rows += [r for r in describe_plugins(plugin_set) if r["name"] in names]
    rows += [
        {
            "name": f.plugin,
            "kind": "failed",
            "distribution": f.distribution,
            "version": f.version,
            "description": "",
            "error": f.error,
        }
        for f in plugin_set.failures
        if f.plugin in names
    ]
    return rows


# --------------------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------------------


def _wrap(text: str, width: int, indent: int) -> list[str]:
    """`text` wrapped to end by `width`, every line but the first indented to column `indent`."""
    room = max(12, width - indent)
    lines = [line.replace(NBSP, " ") for line in textwrap.wrap(text, room, break_on_hyphens=False)] or [""]
    return [lines[0]] + [" " * indent + line for line in lines[1:]]


def _columns(cells: Sequence[str], widths: Sequence[int], width: int, indent: int) -> list[str]:
    """One aligned row: every cell but the last padded to its column, the last wrapped to `width` with a
    hanging indent. A cell longer than its column pushes the wrapped text to the next line."""
    start = indent + sum(widths) + 2 * len(widths)
    head = (" " * indent + "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True))).rstrip()
    if not cells[-1]:
        return [head]
    if width - start < 28:  # too narrow a column left: the text goes below, indented
        start = indent + 4
        return [head, *(" " * start + line for line in _wrap(cells[-1], width - start, 0))]
    wrapped = _wrap(cells[-1], width, start)
    if len(head) + 2 > start:
        return [head, " " * start + wrapped[0], *wrapped[1:]]
    return [head.ljust(start) + wrapped[0], *wrapped[1:]]


def option_lines(options: Iterable[Option], width: int, indent: int) -> list[str]:
    """A key per row (key, type, default or "required", choices, secret), its help wrapped below it."""
    options = list(options)
    if not options:
        return [" " * indent + "(no keys of its own)"]
    key_w = max(len(o.name) for o in options)
    type_w = max(len(o.type) for o in options)
    default_w = min(16, max(len(option_default(o)) for o in options))
    widths = (key_w, type_w, default_w)
    out = []
    room = max(16, width - indent - key_w - type_w - 8)  # a long default (a prompt) is cut to fit
    for o in options:
        default = option_default(o)
        default = default if len(default) <= room else default[: room - 1] + "…"
        out += _columns((o.name, o.type, default, option_flags(o)), widths, width, indent)
        if o.help:
            out += [" " * (indent + 4) + line for line in _wrap(o.help, width - indent - 4, 0)]
    return out


def _plugin_label(info: PluginInfo) -> str:
    if normalize(info.distribution) == normalize(info.name):
        return info.name
    return f"{info.name} ({info.distribution})"


def _plugin_state(plugin_set: PluginSet, info: PluginInfo) -> str:
    if info.status == "failed":
        return f"FAILED to load: {info.reason}"
    if info.status == "disabled":
        return f"not loaded: {info.reason}"
    hooks = plugin_set.hooks_of(info.name)
    text = ", ".join(hooks) or "no hooks"
    try:
        group = plugin_set.commands_of(info.name)
    except Exception as exc:  # noqa: BLE001 - a listing must survive a broken command hook
        return text + f" (its trainprove_commands hook failed: {exc!r})"
    if group is not None and group.commands:
        names = ", ".join(sorted(group.commands))
        text += f" (command{'s' if len(group.commands) > 1 else ''}: {names})".replace(" ", NBSP)
        text = text.replace(NBSP, " ", 1)
    return text


def render_text(
    plugin_set: PluginSet,
    selection: Selection,
    show_options: bool,
    everything: bool = True,
    details: bool = False,
    width: int | None = None,
) -> list[tuple[str, str]]:
    """The listing as `(style, line)` pairs; style is "title", "problem" or "" (the CLI colours them).
    `everything`: the whole set is shown, so every problem is too (else only the selected plugins').
    `details`: each plugin's summary and entry point under its row."""
    width = width or terminal_width()
    out: list[tuple[str, str]] = []
    regs = selection.registrations
    conflicted = {(k, n) for k, n, _ in plugin_set.conflicts()}
    name_w = min(24, max([len(r.name) for r in regs] or [0]))
    for kind, members in by_kind(regs):
        if out:
            out.append(("", ""))
        out.append(("title", kind.title))
        by_dist: dict[tuple[str, str], list[Registered]] = {}
        for r in members:
            by_dist.setdefault((r.distribution, r.version), []).append(r)
        for (dist, version), group in sorted(by_dist.items()):
            out.append(("", f"  {dist} {version}".rstrip()))
            for r in sorted(group, key=lambda r: r.name):
                description = r.spec.description
                style = ""
                if (r.kind, r.name) in conflicted:
                    description = "[conflict: see Problems] " + description
                    style = "problem"
                for line in _columns((r.name, description), (name_w,), width, 4):
                    out.append((style, line))
                classes = getattr(r.spec, "classes", None)
                if show_options and classes:
                    text = "classes, in index order ([task] classes must be these): " + ", ".join(classes)
                    out += [("", " " * 8 + line) for line in _wrap(text, width - 8, 4)]
                if show_options:
                    out.extend(("", line) for line in option_lines(r.spec.options, width, 8))
    if selection.plugins:
        if out:
            out.append(("", ""))
        out.append(("title", "Plugins"))
        label_w = min(32, max(len(_plugin_label(p)) for p in selection.plugins))
        version_w = max(len("version"), *(len(p.version) for p in selection.plugins))
        out.extend(
            ("", line) for line in _columns(("plugin", "version", "hooks"), (label_w, version_w), width, 2)
        )
        for p in selection.plugins:
            style = "problem" if p.status == "failed" else ""
            state = _plugin_state(plugin_set, p)
            for line in _columns((_plugin_label(p), p.version, state), (label_w, version_w), width, 2):
                out.append((style, line))
            if details:
                if p.summary:
                    out += [("", "    " + line) for line in _wrap(p.summary, width - 4, 0)]
                if p.value:
                    out.append(("", f"    entry point: {p.entry_point} = {p.value!r}"))
    if everything:
        problems = plugin_set.all_problems()
    else:
        problems = [problem for p in selection.plugins for problem in plugin_set.problems_of(p.name)]
    problems = list(dict.fromkeys(problems))
    if problems:
        out.append(("", ""))
        out.append(("title", "Problems"))
        for problem in problems:
            for line in _wrap(problem, width, 4):
                out.append(("problem", line if line.startswith("    ") else "  " + line))
    return out
