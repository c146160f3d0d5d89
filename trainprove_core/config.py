"""The audit file: TOML in, a validated `AuditConfig` out, or a `ConfigError` naming the file and key.

The core owns `seed`, `[task]`, `[shadow]`'s set keys, `[validation]` and the `name`/`use`/`truth` keys of
suspects and tests; every other key belongs to the plugin that a table's `use` (or `[shadow] trainer`)
names, and is checked against the options that plugin declares. Relative paths are relative to the audit
file.

Every table is described once, in `TABLES`: its core keys, and, for a table that selects a plugin, the
plugin kind and the key that names it. `config_from_dict` validates them all in one loop (core and plugin
keys together, so a typo is matched against every key the table accepts), runs the options' load-time
checks, builds each decision test once to let it refuse its settings, and keeps a masked copy of every
table for `AuditConfig.public_document()`. Nothing here generates, trains or queries.
"""

from __future__ import annotations

import difflib
import math
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import secrets
from .checks import not_blank, prompt_template
from .errors import ConfigError, PluginError, TrainproveError
from .records import DECISIONS, KIND, Kind, Option
from .task import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SEED_MAX = 2**32 - 1
"""The largest seed: every seed is an unsigned 32-bit number (numpy's and torch's seeds take it)."""
MAX_IMAGE_SIZE = 4096
SEED = Option("seed", "int", 0, max=SEED_MAX, help="global seed; each set's seed derives from it unless set")
TASK_OPTIONS = (
    Option("classes", "list[str]", help="class names in the suspect's index order"),
    Option(
        "image_size", "int", min=4, max=MAX_IMAGE_SIZE, help="side of the square images the suspect takes"
    ),
)


SET_OPTIONS = (
    Option("prompt", "str", help="prompt template; {label} is the class name", check=prompt_template),
    Option("per_class", "int", min=1, help="images per class"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of this set (default: derived from the audit seed)"),
)
SHADOW_OPTIONS = SET_OPTIONS + (Option("trainer", "str", "timm", help="shadow trainer plugin"),)
VALIDATION_OPTIONS = SET_OPTIONS + (
    Option(
        "batch_size", "int", min=1, help="validation images per batch of the test (the paper: 128 for CIFAR)"
    ),
    Option(
        "rounds",
        "int",
        1,
        min=1,
        max=16,
        help="ask suspects the validation set in this many rounds and stop once every decision test has "
        "decided (a sequential audit; 1: ask it all at once)",
    ),
)
SHADOW_NAME = "shadow"
"""The name the shadow model's answers go by (in the cache and the query counts): no suspect's."""


def _suspect_name(name: str, settings: Mapping[str, Any]) -> None:
    not_blank(name, settings)
    if name == SHADOW_NAME:
        raise ValueError(f"{name!r} is the shadow model's name in reports and the cache; choose another")


SUSPECT_OPTIONS = (
    Option("name", "str", help="a name for this suspect, unique in the file", check=_suspect_name),
    Option("use", "str", help="suspect adapter plugin"),
    Option("truth", "str", None, choices=DECISIONS[:2], help="the right decision, where known (benchmarks)"),
)
TEST_OPTIONS = (
    Option("use", "str", help="decision test plugin"),
    Option("name", "str", None, help="a name for this test (default: the plugin name)", check=not_blank),
    Option(
        "governs",
        "bool",
        False,
        help="this test's verdicts are the report's finding (at most one test; default: the calibrated "
        "rule where the audit runs it, else the first test)",
    ),
)
PLUGIN_OPTIONS = (Option("use", "str", help="plugin name"),)
CONTROL_OPTIONS = (
    Option("use", "str", help="generator plugin of a source known to differ (another generator, real data)"),
    Option("per_class", "int", None, min=1, help="training images per class (default: the shadow set's)"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of the control's training set (default: derived)"),
)
POSITIVE_CONTROL_OPTIONS = (
    Option(
        "trainer",
        "str",
        "timm",
        help="shadow trainer plugin of the positive control; its other keys here are that trainer's, and "
        "should differ from [shadow]'s (another architecture, length, augmentation)",
    ),
    Option("per_class", "int", None, min=1, help="training images per class (default: the shadow set's)"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of the control's training set (default: derived)"),
)
DEFAULT_TESTS = ({"use": "trainprove"},)


@dataclass(frozen=True)
class TableSpec:
    """One table of the audit file, as the loader sees it.

    `core` are the keys the core owns there. A table with a `kind` selects a plugin of that kind by the
    value of the kind's `use_key`; the plugin's declared options are its other keys. `many` is an array of
    tables (`[[suspect]]`); `default` stands in for a table the file leaves out (None: the table is
    optional, or `required`). `build` asks the loader to build the plugin's object once, so that settings
    the plugin refuses (in its factory) are refused when the file is loaded, not halfway through the audit.
    """

    name: str
    core: tuple[Option, ...]
    kind: Kind | None = None
    required: bool = False
    many: bool = False
    default: Any = None
    build: bool = False

    @classmethod
    def of(cls, kind: str, core: tuple[Option, ...], **rest: Any) -> TableSpec:
        """The table a kind owns (`[generator]`, `[[suspect]]`...): its name and `many` come from the kind."""
        row = KIND[kind]
        return cls(row.table, core, row, many=row.many, **rest)

    @property
    def use_key(self) -> str:
        return self.kind.use_key if self.kind is not None else "use"


TABLES: tuple[TableSpec, ...] = (
    TableSpec("task", TASK_OPTIONS, required=True),
    TableSpec.of("generator", PLUGIN_OPTIONS, required=True),
    TableSpec.of("shadow-trainer", SHADOW_OPTIONS, required=True),
    TableSpec("validation", VALIDATION_OPTIONS, required=True),
    TableSpec("negative_control", CONTROL_OPTIONS, KIND["generator"]),
    TableSpec("positive_control", POSITIVE_CONTROL_OPTIONS, KIND["shadow-trainer"]),
    TableSpec.of("suspect", SUSPECT_OPTIONS, required=True),
    TableSpec.of("test", TEST_OPTIONS, default=list(DEFAULT_TESTS), build=True),
    TableSpec.of("executor", PLUGIN_OPTIONS, default={"use": "local"}),
)
"""Every table of the audit file, in the order the loader checks them."""

TOP_LEVEL = ("seed", *(t.name for t in TABLES))
"""Every top-level key an audit file may have."""


@dataclass
class PluginTable:
    """A table that selects a plugin: its name, the registration, and its validated settings."""

    use: str
    settings: dict[str, Any]
    public: dict[str, Any]
    distribution: str = ""
    version: str = ""


@dataclass
class ImageSetConfig:
    prompt: str
    per_class: int
    seed: int
    batch_size: int | None = None
    rounds: int = 1


@dataclass
class SuspectConfig:
    name: str
    adapter: PluginTable
    truth: str | None = None


@dataclass
class TestConfig:
    name: str
    test: PluginTable
    governs: bool = False


@dataclass
class LoadedTable:
    """One table as loaded: where it is (`[suspect s]`), the core's settings, the plugin's (if it selects
    one), and the table as written with every secret value masked."""

    where: str
    core: dict[str, Any]
    plugin: PluginTable | None
    public: dict[str, Any]


@dataclass
class AuditConfig:
    source: str
    seed: int
    task: Task
    generator: PluginTable
    shadow: ImageSetConfig
    trainer: PluginTable
    validation: ImageSetConfig
    suspects: list[SuspectConfig]
    tests: list[TestConfig]
    executor: PluginTable
    negative_control: PluginTable | None = None
    control_set: ImageSetConfig | None = None
    positive_control: PluginTable | None = None
    positive_set: ImageSetConfig | None = None
    document: dict[str, Any] = field(default_factory=dict)
    public_tables: dict[str, Any] = field(default_factory=dict)

    def public_document(self) -> dict[str, Any]:
        """The audit as written, with the value of every option declared `secret` replaced by
        "<secret>", whichever table declares it (for reports and manifests). A table the file leaves out
        stays out."""
        doc = dict(self.document)
        for name, public in self.public_tables.items():
            if name in doc:
                doc[name] = public
        return doc


def _check_type(value: Any, option: Option) -> bool:
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


def _check_bounds(key: str, value: Any, option: Option) -> str | None:
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
        if value is not None and not _check_type(value, option):
            raise ConfigError(
                f"key {key!r} must be {option.type}, got {type(value).__name__} {value!r}", source, where
            )
        if option.choices is not None and value not in option.choices:
            raise ConfigError(
                f"key {key!r} must be one of {list(option.choices)}, got {value!r}", source, where
            )
        out_of_bounds = _check_bounds(key, value, option)
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


def _bare_message(exc: Exception) -> str:
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
        return _bare_message(exc)
    return f"{what} failed: {type(exc).__name__}: {exc}"


def _run_checks(
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
    _run_checks(settings, registered.spec.options, source=source, where=where, owner=owner)
    _run_validate(registered, settings, source=source, where=where)


def _load_table(
    raw: Any, spec: TableSpec, plugins: Any, *, source: str, where: str, base_dir: Path
) -> LoadedTable:
    """Validate one table of the file against the core's keys and, where it selects one, its plugin's."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a table, got {type(raw).__name__}", source, where)
    kind = spec.kind
    if kind is None:
        core = validate_table(raw, spec.core, source=source, where=where, base_dir=base_dir)
        _run_checks(core, spec.core, source=source, where=where)
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
    _run_checks(core, spec.core, source=source, where=where)
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


def _where(spec: TableSpec, raw: Any, index: int) -> str:
    if not spec.many:
        return spec.name
    name = raw.get("name") if spec.name == "suspect" and isinstance(raw, Mapping) else None
    if isinstance(name, str) and name.strip():
        return f"suspect {name}"
    return f"{spec.name} {index + 1}"


def load_config(path: str | Path, plugins: Any) -> AuditConfig:
    """Read and validate an audit file. Every problem is a ConfigError naming the file and the key."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file", source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source) from None
    document = parse_toml(data, source)
    return config_from_dict(document, plugins, source=source, base_dir=path.resolve().parent)


def parse_toml(data: bytes, source: str) -> dict[str, Any]:
    """The TOML document in `data`, or a ConfigError that says what is wrong with the file as a file: a
    byte-order mark, another encoding than UTF-8, a syntax error (with its line and column)."""
    for bom, encoding in ((b"\xef\xbb\xbf", "UTF-8"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise ConfigError(
                f"starts with a {encoding} byte-order mark (BOM), which TOML does not allow; save the file "
                'as UTF-8 without a BOM (most editors: encoding "UTF-8", not "UTF-8 with BOM")',
                source,
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"is not UTF-8: byte 0x{data[exc.start]:02x} at line {line}, column {column} is not valid UTF-8 "
            "(a Latin-1 or Windows-1252 file?); TOML files must be UTF-8: save it again as UTF-8",
            source,
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source) from None


def config_from_dict(
    document: Mapping[str, Any], plugins: Any, *, source: str = "<audit>", base_dir: Path | None = None
) -> AuditConfig:
    """Validate an audit given as a dict (what `load_config` does after parsing)."""
    base_dir = base_dir or Path.cwd()
    for key in document:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(key, TOP_LEVEL, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown top-level key {key!r}{hint}; known: {', '.join(TOP_LEVEL)}", source)
    for spec in TABLES:
        if spec.required and spec.name not in document:
            raise ConfigError(
                f"missing [{spec.name}] table"
                if not spec.many
                else f"needs at least one [[{spec.name}]] table",
                source,
            )
    seed = document.get("seed", 0)
    if not _check_type(seed, SEED):
        raise ConfigError(f"top-level key 'seed' must be int, got {type(seed).__name__} {seed!r}", source)
    out_of_bounds = _check_bounds("seed", seed, SEED)
    if out_of_bounds:
        raise ConfigError(f"top-level {out_of_bounds}", source)

    loaded: dict[str, list[LoadedTable]] = {}
    public: dict[str, Any] = {}
    task: Task | None = None
    for spec in TABLES:
        raw = document.get(spec.name, spec.default)
        if raw is None:
            continue
        if spec.many:
            if isinstance(raw, Mapping):
                raw = [raw]
            if not isinstance(raw, list):
                raise ConfigError(
                    f"must be an array of tables (one [[{spec.name}]] header per table), got "
                    f"{type(raw).__name__} {raw!r}",
                    source,
                    spec.name,
                )
            if not raw:
                left_out = " (leave it out for the default)" if spec.default is not None else ""
                raise ConfigError(
                    f"needs at least one [[{spec.name}]] table, got an empty list{left_out}",
                    source,
                    spec.name,
                )
        elif isinstance(raw, list):
            raise ConfigError(
                f"must be one [{spec.name}] table, not an array of tables ([[{spec.name}]])",
                source,
                spec.name,
            )
        tables = [
            _load_table(r, spec, plugins, source=source, where=_where(spec, r, i), base_dir=base_dir)
            for i, r in enumerate(raw if spec.many else [raw])
        ]
        if spec.name == "task":
            task = _task(tables[0].core, source)
        if spec.kind is KIND["generator"]:
            _check_generator_classes(tables[0], task, plugins, source, spec.name)
        if spec.name in ("shadow", "validation"):
            _check_prompt_names_the_label(tables[0], loaded["generator"][0], plugins, source)
        loaded[spec.name] = tables
        public[spec.name] = [t.public for t in tables] if spec.many else tables[0].public
    assert task is not None

    shadow, validation = loaded["shadow"][0], loaded["validation"][0]

    suspects: list[SuspectConfig] = []
    for t in loaded["suspect"]:
        if any(s.name == t.core["name"] for s in suspects):
            raise ConfigError(f"key 'name': suspect name {t.core['name']!r} is used twice", source, t.where)
        suspects.append(SuspectConfig(t.core["name"], t.plugin, t.core["truth"]))
    tests: list[TestConfig] = []
    for t in loaded["test"]:
        name = t.core["name"] or t.core["use"]
        if any(x.name == name for x in tests):
            raise ConfigError(
                f"key 'name': test name {name!r} is used twice; give one a `name`", source, t.where
            )
        if t.core["governs"] and any(x.governs for x in tests):
            raise ConfigError("key 'governs': only one [[test]] may govern the finding", source, t.where)
        tests.append(TestConfig(name, t.plugin, t.core["governs"]))

    def image_set(settings: dict[str, Any], offset: int) -> ImageSetConfig:
        set_seed = settings["seed"] if settings["seed"] is not None else seed * 1000 + offset
        return ImageSetConfig(
            settings["prompt"],
            settings["per_class"],
            set_seed,
            settings.get("batch_size"),
            settings.get("rounds", 1),
        )

    def control(name: str, offset: int) -> tuple[PluginTable | None, ImageSetConfig | None]:
        """A control's plugin table and training set (the shadow's prompt; its size unless given)."""
        if name not in loaded:
            return None, None
        core = loaded[name][0].core
        return loaded[name][0].plugin, ImageSetConfig(
            shadow.core["prompt"],
            core["per_class"] or shadow.core["per_class"],
            core["seed"] if core["seed"] is not None else seed * 1000 + offset,
        )

    negative_control, control_set = control("negative_control", 3)
    positive_control, positive_set = control("positive_control", 4)
    config = AuditConfig(
        source=source,
        seed=seed,
        task=task,
        generator=loaded["generator"][0].plugin,
        shadow=image_set(shadow.core, 1),
        trainer=shadow.plugin,
        validation=image_set(validation.core, 2),
        suspects=suspects,
        tests=tests,
        executor=loaded["executor"][0].plugin,
        negative_control=negative_control,
        control_set=control_set,
        positive_control=positive_control,
        positive_set=positive_set,
        document=dict(document),
        public_tables=public,
    )
    _check_batches(config)
    check_memory(config)
    return config


def _task(settings: Mapping[str, Any], source: str) -> Task:
    try:
        return Task(tuple(settings["classes"]), settings["image_size"])
    except ValueError as exc:
        raise ConfigError(f"key 'classes': {exc}", source, "task") from None


def _check_prompt_names_the_label(
    table: LoadedTable, generator: LoadedTable, plugins: Any, source: str
) -> None:
    """A generator prompted by text (one not conditioned on the class index) makes one class from each
    prompt: a template without {label} would give every class the same images."""
    assert generator.plugin is not None
    if plugins.generator(generator.plugin.use).spec.classes is not None:
        return
    prompt = table.core["prompt"]
    if prompt.format(label="x") == prompt.format(label="y"):
        raise ConfigError(
            f"key 'prompt': {prompt!r} does not name the class; generator {generator.plugin.use!r} is "
            "prompted by text, so every class would get the same images: put {label} where the class name "
            'goes, e.g. "a photo of a {label}"',
            source,
            table.where,
        )


def _check_generator_classes(
    table: LoadedTable, task: Task | None, plugins: Any, source: str, name: str
) -> None:
    """A generator conditioned on the class index draws its own classes in its own order: the task's
    classes must be those, in that order, or every image would be of the wrong class."""
    assert task is not None and table.plugin is not None
    expected = plugins.generator(table.plugin.use).spec.classes
    if expected is None:
        return
    differs = task.order_mismatch(expected)
    if differs is None:
        return
    shared = set(task.classes) & set(expected)
    detail = f" ({differs})" if shared else ""
    raise ConfigError(
        f"key 'classes' must be, in this order, the classes generator {table.plugin.use!r} of [{name}] "
        f"draws by class index: {list(expected)}; got {list(task.classes)}{detail}",
        source,
        "task",
    )


def _check_batches(config: AuditConfig) -> None:
    """The tests compare the suspect with the spread of the shadow's per-batch accuracies: one batch
    has no spread, and every verdict would come out inconclusive after the whole audit ran."""
    images = config.validation.per_class * config.task.num_classes
    batch_size = config.validation.batch_size or images
    if math.ceil(images / batch_size) < 2:
        raise ConfigError(
            f"key 'batch_size' ({batch_size}) puts all {images} validation images (per_class "
            f"{config.validation.per_class} x {config.task.num_classes} classes) in one batch; the decision "
            "tests compare per-batch accuracies and need several batches (the paper: 40; its Grubbs test at "
            f"alpha = 0.05 at least 8): use a batch_size of at most {images // 2}",
            config.source,
            "validation",
        )


# --------------------------------------------------------------------------------------------------------
# What the machine can hold
# --------------------------------------------------------------------------------------------------------


def image_sets(config: AuditConfig) -> list[tuple[str, int, bool]]:
    """Every image set the audit makes: (the table whose `per_class` sizes it, images, trained on)."""
    classes = config.task.num_classes
    sets = [("shadow", config.shadow.per_class * classes, True)]
    sets.append(("validation", config.validation.per_class * classes, False))
    for table, image_set in (
        ("negative_control", config.control_set),
        ("positive_control", config.positive_set),
    ):
        if image_set is not None:
            sets.append((table, image_set.per_class * classes, True))
    return sets


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def physical_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _largest(config: AuditConfig) -> str:
    return max(image_sets(config), key=lambda s: s[1])[0]


def memory_needed(config: AuditConfig) -> int:
    """Bytes an audit holds at once, at least: every image set (uint8, at the task's size) and the float32
    copy a trainer makes of the largest training set."""
    per_image = config.task.image_size**2 * 3
    sets = image_sets(config)
    return (
        sum(n for _, n, _ in sets) * per_image + 4 * max(n for _, n, trained in sets if trained) * per_image
    )


def check_memory(config: AuditConfig, available: int | None = None) -> None:
    """Refuse an audit whose image sets cannot fit in this machine's memory (`available` bytes, default:
    all of it), naming the largest set's `per_class`."""
    available = physical_memory() if available is None else available
    needed = memory_needed(config)
    if available is None or needed <= available:
        return
    table = _largest(config)
    raise ConfigError(
        f"key 'per_class': this audit holds at least {_size(needed)} of images in memory (its image sets "
        f"at {config.task.image_size} px, and a float copy of the largest training set), more than this "
        f"machine's {_size(available)}; lower per_class here or in the other sets, or [task] image_size",
        config.source,
        table,
    )


def check_disk(config: AuditConfig, store_root: Path, free: int | None = None) -> None:
    """Refuse an audit whose image sets cannot fit on the store's disk (`free` bytes, default: what the
    disk of `store_root` has free): each set is written in chunks and then merged, twice its size."""
    per_image = config.task.image_size**2 * 3
    sets = image_sets(config)
    needed = sum(n for _, n, _ in sets) * per_image + max(n for _, n, _ in sets) * per_image
    if free is None:
        existing = Path(store_root)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            return
    if needed <= free:
        return
    raise ConfigError(
        f"key 'per_class': this audit writes about {_size(needed)} of images to the store ({store_root}) "
        f"while they are made, and its disk has {_size(free)} free; lower per_class here or in the other "
        "sets, or [task] image_size, or use --store on a larger disk",
        config.source,
        _largest(config),
    )


# --------------------------------------------------------------------------------------------------------
# Keys a core key would hide
# --------------------------------------------------------------------------------------------------------


def shadowed_options(registrations: Iterable[Any]) -> list[str]:
    """One line per option one of `registrations` (`PluginSet.all_registered()`) declares that a core key
    of a table where it can be selected takes for itself: such an option could never be set from the
    audit file. Should be empty (a test keeps it so for the installed plugins; `trainprove plugins` lists
    any as a problem of the plugin)."""
    registrations = list(registrations)
    out = []
    for spec in TABLES:
        if spec.kind is None:
            continue
        core = {o.name for o in spec.core}
        for registered in registrations:
            if registered.kind != spec.kind.name:
                continue
            for option in registered.spec.options:
                if option.name in core:
                    out.append(
                        f"{registered.kind} {registered.name!r} ({registered.distribution}) declares the key "
                        f"{option.name!r}, which the core owns in [{spec.name}]: it can never be set there"
                    )
    return out


def load_table(
    spec: TableSpec,
    raw: Mapping[str, Any],
    plugins: Any,
    *,
    source: str,
    base_dir: Path | None = None,
    task: Task | None = None,
) -> LoadedTable:
    """One table validated exactly as an audit file's (types, choices, bounds, required and unknown keys,
    the plugin its `use` names, load-time checks; a generator's classes against `task` where given), for
    commands that take one table's settings from their options instead of a file (`trainprove sample`)."""
    loaded = _load_table(raw, spec, plugins, source=source, where=spec.name, base_dir=base_dir or Path.cwd())
    if spec.kind is KIND["generator"] and task is not None:
        _check_generator_classes(loaded, task, plugins, source, spec.name)
    return loaded
