"""Checking one table: types, choices, bounds, unknown and required keys, paths, the options' load-time
checks and a plugin's own `validate`; every refusal a `ConfigError` naming the file and the table."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import secrets
from ..errors import ConfigError, PluginError, TrainproveError
from ..records import Option
from .tables import LoadedTable, PluginTable, TableSpec


def check_type(value: Any, option: Option) -> bool:
    t = option.type
    if t in ("str", "path", "path-or-id"):
        return isinstance(value, str)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "bool":
        return isinstance(value, bool)
    if t == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if t == "list[float]":
        return isinstance(value, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
    if t == "table":
        return isinstance(value, dict)
    raise AssertionError(f"unknown option type {t!r}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_bounds(key: str, value: Any, option: Option) -> str | None:
    """The message for a number outside the option's bounds (an int without `min` must not be negative;
    a float, and every number of a list[float], must be finite)."""
    if option.type == "list[float]" and value is not None:
        bad = [v for v in value if isinstance(v, float) and not math.isfinite(v)]
        return f"key {key!r} must hold finite numbers, got {value}" if bad else None
    if option.type not in ("int", "float") or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"key {key!r} must be a finite number (got {value})"
    low = option.min if option.min is not None else (0 if option.type == "int" else None)
    if low is not None and option.exclusive_min and value <= low:
        return f"key {key!r} must be above {_number(low)} (got {value})"
    if low is not None and value < low:
        return f"key {key!r} must be at least {_number(low)} (got {value})"
    if option.max is not None and value > option.max:
        return f"key {key!r} must be at most {_number(option.max)} (got {value})"
    return None


def _known_keys(groups: list[tuple[str, list[str]]]) -> str:
    """`a, b (core); c, d (generator 'x')`: every key a table accepts, by owner."""
    parts = [", ".join(sorted(names)) + (f" ({owner})" if owner else "") for owner, names in groups if names]
    return "; ".join(parts) or "none"


def validate_table(
    table: Mapping[str, Any],
    options: tuple[Option, ...],
    *,
    source: str,
    where: str,
    base_dir: Path | None = None,
    owner: str = "",
    core: tuple[Option, ...] = (),
) -> dict[str, Any]:
    """Check `table` against `options` (a plugin's, `owner` naming it) and `core` (the core's keys in the
    same table; they win a name both declare): unknown keys, types, choices, bounds, required keys; fill
    defaults and resolve paths. Returns the settings of both; raises ConfigError naming `source` and
    `where`. An unknown key is matched against every key of the table, core keys included."""
    core_names = {o.name for o in core}
    merged = (*core, *(o for o in options if o.name not in core_names))
    by_name = {o.name: o for o in merged}
    secrets.register_options(table, merged)  # first: a message below may quote a value
    out: dict[str, Any] = {}
    for key, value in table.items():
        option = by_name.get(key)
        if option is None:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            groups = [("core", sorted(core_names))] if core else []
            groups.append((owner, [o.name for o in options if o.name not in core_names]))
            raise ConfigError(f"unknown key {key!r}{hint}; known keys: {_known_keys(groups)}", source, where)
        if value is not None and not check_type(value, option):
            raise ConfigError(
                f"key {key!r} must be {option.type}, got {type(value).__name__} {value!r}", source, where
            )
        if option.choices is not None and value not in option.choices:
            raise ConfigError(
                f"key {key!r} must be one of {list(option.choices)}, got {value!r}", source, where
            )
        out_of_bounds = check_bounds(key, value, option)
        if out_of_bounds:
            raise ConfigError(out_of_bounds, source, where)
        if option.type in ("path", "path-or-id") and isinstance(value, str):
            value = _resolve_path(value, option.type, base_dir)
        out[key] = float(value) if option.type == "float" and value is not None else value
    for option in merged:
        if option.name not in out:
            if option.required:
                raise ConfigError(f"missing required key {option.name!r} ({option.help})", source, where)
            out[option.name] = option.default
    return out


def _resolve_path(value: str, kind: str, base_dir: Path | None) -> str:
    """A "path" is relative to the audit file. A "path-or-id" is a local directory if one exists there
    (or relative to the working directory), and otherwise kept as written: a hub id such as `org/name`."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    anchored = (base_dir / path) if base_dir is not None else path
    if kind == "path" or anchored.exists():
        return str(anchored.resolve())
    return str(path.resolve()) if path.exists() else value


def public_settings(settings: Mapping[str, Any], options: tuple[Option, ...]) -> dict[str, Any]:
    secret = {o.name for o in options if o.secret}
    return {k: ("<secret>" if k in secret and v is not None else v) for k, v in settings.items()}


def table_error(exc: Exception, source: str, where: str, what: str) -> ConfigError:
    """`exc`, raised while a table was being used before any work (`what`: the plugin that raised it), as
    the one error format: the file, the table, and the plugin's own sentence (or its fault, named)."""
    return ConfigError(_refusal(exc, what), source, where)


def bare_message(exc: Exception) -> str:
    """An error's message without the `[table] ` prefix a plugin's ConfigError(key=...) put in front."""
    message = str(exc)
    if isinstance(exc, ConfigError):
        for prefix in (f"{exc.file}: [{exc.key}] ", f"{exc.file}: ", f"[{exc.key}] "):
            if message.startswith(prefix):
                return message[len(prefix) :]
    return message


def _refusal(exc: Exception, what: str) -> str:
    """A check's message: its own sentence for a refusal (ValueError, TrainproveError), else the fault of
    the plugin that checks (`what`), named, without a traceback."""
    if isinstance(exc, (ValueError, TrainproveError)):
        return bare_message(exc)
    return f"{what} failed: {type(exc).__name__}: {exc}"


def run_checks(
    settings: Mapping[str, Any], options: tuple[Option, ...], *, source: str, where: str, owner: str = "core"
) -> None:
    """The options' load-time checks (`Option.check`), in declaration order."""
    for option in options:
        value = settings.get(option.name)
        if option.check is None or value is None:
            continue
        try:
            option.check(value, settings)
        except Exception as exc:  # noqa: BLE001 - a plugin's fault is reported, not a traceback
            message = _refusal(exc, f"the check of {owner}")
            raise ConfigError(f"key {option.name!r}: {message}", source, where) from None


def _run_validate(registered: Any, settings: Mapping[str, Any], *, source: str, where: str) -> None:
    """The spec's own `validate(settings)`, after every option passed."""
    validate = getattr(registered.spec, "validate", None)
    if validate is None:
        return
    try:
        validate(settings)
    except Exception as exc:  # noqa: BLE001 - a plugin's fault is reported, not a traceback
        owner = f"{registered.kind} {registered.name!r} ({registered.distribution})"
        raise ConfigError(_refusal(exc, f"the settings check of {owner}"), source, where) from None


def check_plugin_settings(registered: Any, settings: Mapping[str, Any], *, source: str, where: str) -> None:
    """The load-time checks of a plugin's validated settings: each option's `check`, then the spec's
    `validate`. The loader runs them on every table; `Workspace.plugin_table` on the tables a decision
    test or a benchmark builds itself."""
    owner = f"{registered.kind} {registered.name!r}"
    run_checks(settings, registered.spec.options, source=source, where=where, owner=owner)
    _run_validate(registered, settings, source=source, where=where)


def load_raw_table(
    raw: Any, spec: TableSpec, plugins: Any, *, source: str, where: str, base_dir: Path
) -> LoadedTable:
    """Validate one table of the file against the core's keys and, where it selects one, its plugin's."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a table, got {type(raw).__name__}", source, where)
    kind = spec.kind
    if kind is None:
        core = validate_table(raw, spec.core, source=source, where=where, base_dir=base_dir)
        run_checks(core, spec.core, source=source, where=where)
        return LoadedTable(where, core, None, public_settings(dict(raw), spec.core))
    # The plugin is needed to know the table's other keys: find it first, then check every key at once.
    use_option = next(o for o in spec.core if o.name == spec.use_key)
    core_names = {o.name for o in spec.core}
    if spec.use_key not in raw and use_option.required:
        # A typo of the plugin key is "unknown key 'uze' (did you mean 'use'?)", not "missing 'use'".
        for key in raw:
            if key not in core_names and difflib.get_close_matches(key, [spec.use_key], n=1):
                raise ConfigError(
                    f"unknown key {key!r} (did you mean {spec.use_key!r}?); known keys: "
                    f"{_known_keys([('core', sorted(core_names))])}, and the keys of the {kind.name} "
                    f"plugin that {spec.use_key!r} names",
                    source,
                    where,
                )
        raise ConfigError(f"missing required key {spec.use_key!r} ({use_option.help})", source, where)
    written_use = {k: v for k, v in raw.items() if k == spec.use_key}
    use = validate_table(written_use, (use_option,), source=source, where=where)
    name = use[spec.use_key]
    try:
        registered = plugins.get(kind.name, name)
    except PluginError as exc:
        close = difflib.get_close_matches(name, plugins.names(kind.name), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"key {spec.use_key!r}: {exc}{hint}", source, where) from None
    options = registered.spec.options
    settings = validate_table(
        raw,
        options,
        core=spec.core,
        source=source,
        where=where,
        base_dir=base_dir,
        owner=f"{kind.name} {name!r}",
    )
    core = {k: v for k, v in settings.items() if k in core_names}
    plugin_settings = {k: v for k, v in settings.items() if k not in core_names}
    plugin_options = tuple(o for o in options if o.name not in core_names)
    # A plugin option that a core key of the table shadows (the timm trainer's `seed` in [shadow]) cannot
    # be set from this table; the plugin gets its default, as it always has.
    for o in options:
        if o.name in core_names and not o.required:
            plugin_settings[o.name] = o.default
    run_checks(core, spec.core, source=source, where=where)
    check_plugin_settings(registered, plugin_settings, source=source, where=where)
    table = PluginTable(
        name,
        plugin_settings,
        public_settings(plugin_settings, plugin_options),
        registered.distribution,
        registered.version,
    )
    written_core = {k: v for k, v in raw.items() if k in core_names}
    plugin_public = {k: v for k, v in table.public.items() if k not in core_names}
    public = {spec.use_key: name, **public_settings(written_core, spec.core), **plugin_public}
    if spec.build:
        try:
            registered.spec.factory(plugin_settings)
        except Exception as exc:  # noqa: BLE001 - a plugin's fault is reported, not a traceback
            raise ConfigError(_refusal(exc, f"building {kind.name} {name!r}"), source, where) from None
    return LoadedTable(where, core, table, public)


def table_where(spec: TableSpec, raw: Any, index: int) -> str:
    if not spec.many:
        return spec.name
    name = raw.get("name") if spec.name == "suspect" and isinstance(raw, Mapping) else None
    if isinstance(name, str) and name.strip():
        return f"suspect {name}"
    return f"{spec.name} {index + 1}"
