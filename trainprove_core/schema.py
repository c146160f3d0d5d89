"""A JSON Schema of audit files, for editors: `trainprove schema > audit.schema.json`.

It is built from what the loader checks (`config.TABLES`: every table, its core keys and the plugin kind it
selects) and from the options every installed plugin declares: types, bounds, choices, defaults, help
and required keys. A table that selects a plugin (`use = "..."`, `[shadow] trainer = "..."`) lists the
installed names, and one `if`/`then` per plugin says which other keys the table takes with it; keys
outside them are errors, as in the loader. The schema uses only keywords that mean the same in every
draft from 7 to 2020-12 (no `unevaluatedProperties`), so taplo, VS Code and `jsonschema` read it alike.

What a schema cannot say stays with the loader (`trainprove audit`, `plan` and `generate` refuse a file
before any work): unique suspect names, a generator's fixed class order, paths that must exist, a plugin's
own load-time checks, and an integer written as `1.0` (JSON Schema counts it as an integer).
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .config import TABLES, TableSpec
from .listing import json_safe
from .plugins import PluginSet
from .records import Option

DRAFT = "https://json-schema.org/draft/2020-12/schema"

TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "path-or-id": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "list[float]": {"type": "array", "items": {"type": "number"}},
    "table": {"type": "object"},
}
NOTES = {
    "path": "a path, relative to the audit file",
    "path-or-id": "a local directory (relative to the audit file) if one exists, else a hub id",
}
TABLE_HELP = {
    "task": "The suspect's task: its class names, in its index order, and its image size.",
    "shadow": "The shadow set (core keys) and the shadow trainer (`trainer`) with that trainer's keys.",
    "validation": "The validation set the suspects and the shadow model are asked about.",
    "negative_control": "A model of a source known to differ, trained like the shadow: a generator (`use`).",
    "positive_control": "A model of the generator's own images with another recipe: a trainer (`trainer`).",
}


def option_schema(option: Option) -> dict[str, Any]:
    """One key as JSON Schema: its type, choices, bounds (an int without `min` must not be negative, as the
    loader has it), default and help."""
    out: dict[str, Any] = dict(TYPES[option.type])
    if option.choices is not None:
        out["enum"] = json_safe([c for c in option.choices if c is not None])
    if option.type in ("int", "float"):
        low = option.min if option.min is not None else (0 if option.type == "int" else None)
        if low is not None:
            out["minimum"] = low
        if option.max is not None:
            out["maximum"] = option.max
    if not option.required and option.default is not None:
        out["default"] = json_safe(option.default)
    help_text = "; ".join(part for part in (option.help, NOTES.get(option.type, "")) if part)
    if option.secret:
        help_text += " (a secret: masked in reports and manifests)"
    if help_text:
        out["description"] = help_text
    return out


def table_schema(spec: TableSpec, plugins: PluginSet) -> dict[str, Any]:
    """One table: its core keys, and for a table that selects a plugin, the installed names and, per name,
    the keys that plugin adds (any other key is an error)."""
    core_names = [o.name for o in spec.core]
    properties = {o.name: option_schema(o) for o in spec.core}
    out: dict[str, Any] = {"type": "object", "properties": properties}
    required = [o.name for o in spec.core if o.required]
    if required:
        out["required"] = required
    kind = spec.kind
    if kind is None:
        out["additionalProperties"] = False
        out["description"] = TABLE_HELP.get(spec.name, "")
        return out
    use = next(o for o in spec.core if o.name == spec.use_key)
    names = plugins.names(kind.name)
    properties[spec.use_key] = {**properties[spec.use_key], "enum": names}
    out["description"] = TABLE_HELP.get(
        spec.name, f"A {kind.singular}, named by `{spec.use_key}`; its other keys are that plugin's."
    )
    branches = []
    for name in names:
        registered = plugins.get(kind.name, name)
        own = [o for o in registered.spec.options if o.name not in core_names]
        condition: dict[str, Any] = {"properties": {spec.use_key: {"const": name}}}
        if use.required or use.default != name:  # the default plugin is also the one of a table without it
            condition["required"] = [spec.use_key]
        then: dict[str, Any] = {
            "properties": {**dict.fromkeys(core_names, True), **{o.name: option_schema(o) for o in own}},
            "additionalProperties": False,
        }
        plugin_required = [o.name for o in own if o.required]
        if plugin_required:
            then["required"] = plugin_required
        then["$comment"] = f"{kind.singular} {name!r}, from {registered.distribution} {registered.version}"
        branches.append({"if": condition, "then": then})
    if branches:
        out["allOf"] = branches
    return out


def audit_schema(plugins: PluginSet) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an audit file, for the plugins installed."""
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {
        "seed": {"type": "integer", "description": "the audit's seed; each set's seed derives from it"}
    }
    for spec in TABLES:
        defs[spec.name] = table_schema(spec, plugins)
        ref = {"$ref": f"#/$defs/{spec.name}"}
        if spec.many:
            # [[suspect]] tables, or one [suspect] table; if/then/else rather than anyOf, so that an error
            # inside a table is reported as itself, not as "valid under none of".
            properties[spec.name] = {
                "if": {"type": "array"},
                "then": {"items": ref, "minItems": 1},
                "else": ref,
                "description": defs[spec.name]["description"] + f" One [[{spec.name}]] table each.",
            }
        else:
            properties[spec.name] = ref
    distributions = sorted({f"{d} {v}" for d, v in plugins.sources.values()})
    return {
        "$schema": DRAFT,
        "title": "trainprove audit file",
        "description": "An audit for `trainprove audit FILE`. Built by `trainprove schema` from trainprove "
        f"{__version__} and the plugins installed: {', '.join(distributions)}.",
        "type": "object",
        "properties": properties,
        "required": [spec.name for spec in TABLES if spec.required],
        "additionalProperties": False,
        "$defs": defs,
    }
