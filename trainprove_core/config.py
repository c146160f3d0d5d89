"""The audit file: TOML in, a validated `AuditConfig` out, or a `ConfigError` naming the file and key.

The core owns `seed`, `[task]`, `[shadow]`'s set keys, `[validation]` and the `name`/`use`/`truth` keys of
suspects and tests; every other key belongs to the plugin that a table's `use` (or `[shadow] trainer`)
names, and is checked against the options that plugin declares. Relative paths are relative to the audit
file.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, PluginError
from .records import DECISIONS, Option
from .task import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_LEVEL = (
    "seed",
    "task",
    "generator",
    "shadow",
    "validation",
    "suspect",
    "test",
    "negative_control",
    "executor",
)

TASK_OPTIONS = (
    Option("classes", "list[str]", help="class names in the suspect's index order"),
    Option("image_size", "int", help="side of the square images the suspect takes"),
)
SET_OPTIONS = (
    Option("prompt", "str", help="prompt template; {label} is the class name"),
    Option("per_class", "int", help="images per class"),
    Option("seed", "int", None, help="seed of this set (default: derived from the audit seed)"),
)
SHADOW_OPTIONS = SET_OPTIONS + (Option("trainer", "str", "timm", help="shadow trainer plugin"),)
VALIDATION_OPTIONS = SET_OPTIONS + (
    Option("batch_size", "int", help="validation images per batch of the test (the paper: 128 for CIFAR)"),
)
SUSPECT_OPTIONS = (
    Option("name", "str", help="a name for this suspect, unique in the file"),
    Option("use", "str", help="suspect adapter plugin"),
    Option("truth", "str", None, choices=DECISIONS[:2], help="the right decision, where known (benchmarks)"),
)
TEST_OPTIONS = (
    Option("use", "str", help="decision test plugin"),
    Option("name", "str", None, help="a name for this test (default: the plugin name)"),
)
PLUGIN_OPTIONS = (Option("use", "str", help="plugin name"),)
CONTROL_OPTIONS = (
    Option("use", "str", help="generator plugin of a source known to differ (another generator, real data)"),
    Option("per_class", "int", None, help="training images per class (default: the shadow set's)"),
    Option("seed", "int", None, help="seed of the control's training set (default: derived)"),
)
DEFAULT_TESTS = ({"use": "trainprove"},)


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


@dataclass
class SuspectConfig:
    name: str
    adapter: PluginTable
    truth: str | None = None


@dataclass
class TestConfig:
    name: str
    test: PluginTable


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
    document: dict[str, Any] = field(default_factory=dict)

    def public_document(self) -> dict[str, Any]:
        """The audit as written, with secret values replaced (for reports and manifests)."""
        doc = dict(self.document)
        doc["generator"] = {"use": self.generator.use, **self.generator.public}
        doc["shadow"] = {**doc.get("shadow", {}), **self.trainer.public}
        doc["suspect"] = [
            {
                "name": s.name,
                "use": s.adapter.use,
                **({"truth": s.truth} if s.truth else {}),
                **s.adapter.public,
            }
            for s in self.suspects
        ]
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
        return isinstance(value, list) and all(isinstance(v, int | float) for v in value)
    if t == "table":
        return isinstance(value, dict)
    raise AssertionError(f"unknown option type {t!r}")


def validate_table(
    table: Mapping[str, Any],
    options: tuple[Option, ...],
    *,
    source: str,
    where: str,
    base_dir: Path | None = None,
    owner: str = "",
) -> dict[str, Any]:
    """Check `table` against `options`: unknown keys, types, choices, required keys; fill defaults and
    resolve paths. Returns the settings; raises ConfigError naming `source` and `where`."""
    by_name = {o.name: o for o in options}
    out: dict[str, Any] = {}
    for key, value in table.items():
        option = by_name.get(key)
        if option is None:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(by_name)) or "none"
            whose = f" for {owner}" if owner else ""
            raise ConfigError(f"unknown key {key!r}{whose}{hint}; known keys: {known}", source, where)
        if value is not None and not _check_type(value, option):
            raise ConfigError(
                f"key {key!r} must be {option.type}, got {type(value).__name__} {value!r}", source, where
            )
        if option.choices is not None and value not in option.choices:
            raise ConfigError(
                f"key {key!r} must be one of {list(option.choices)}, got {value!r}", source, where
            )
        if option.type == "int" and isinstance(value, int) and value < 0:
            raise ConfigError(f"key {key!r} must not be negative, got {value}", source, where)
        if option.type in ("path", "path-or-id") and isinstance(value, str):
            value = _resolve_path(value, option.type, base_dir)
        out[key] = float(value) if option.type == "float" and value is not None else value
    for option in options:
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


def _plugin_table(
    raw: Mapping[str, Any],
    kind: str,
    plugins: Any,
    *,
    use_key: str,
    core: tuple[Option, ...],
    source: str,
    where: str,
    base_dir: Path,
) -> tuple[dict[str, Any], PluginTable]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"must be a table, got {type(raw).__name__}", source, where)
    core_names = {o.name for o in core}
    core_raw = {k: v for k, v in raw.items() if k in core_names}
    core_settings = validate_table(core_raw, core, source=source, where=where, base_dir=base_dir)
    use = core_settings[use_key]
    try:
        registered = plugins.get(kind, use)
    except PluginError as exc:
        raise ConfigError(f"key {use_key!r}: {exc}", source, where) from None
    options = registered.spec.options
    plugin_raw = {k: v for k, v in raw.items() if k not in core_names}
    settings = validate_table(
        plugin_raw, options, source=source, where=where, base_dir=base_dir, owner=f"{kind} {use!r}"
    )
    table = PluginTable(
        use, settings, public_settings(settings, options), registered.distribution, registered.version
    )
    return core_settings, table


def load_config(path: str | Path, plugins: Any) -> AuditConfig:
    """Read and validate an audit file. Every problem is a ConfigError naming the file and the key."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source) from None
    return config_from_dict(document, plugins, source=source, base_dir=path.resolve().parent)


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
    for required in ("task", "generator", "shadow", "validation", "suspect"):
        if required not in document:
            raise ConfigError(f"missing [{required}] table", source)
    seed = document.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"top-level key 'seed' must be int, got {seed!r}", source)

    def table(name: str) -> Mapping[str, Any]:
        value = document[name]
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a table, got {type(value).__name__}", source, name)
        return value

    task_settings = validate_table(table("task"), TASK_OPTIONS, source=source, where="task")
    try:
        task = Task(tuple(task_settings["classes"]), task_settings["image_size"])
    except ValueError as exc:
        raise ConfigError(str(exc), source, "task") from None

    _, generator = _plugin_table(
        table("generator"),
        "generator",
        plugins,
        use_key="use",
        core=PLUGIN_OPTIONS,
        source=source,
        where="generator",
        base_dir=base_dir,
    )
    shadow_settings, trainer = _plugin_table(
        table("shadow"),
        "shadow-trainer",
        plugins,
        use_key="trainer",
        core=SHADOW_OPTIONS,
        source=source,
        where="shadow",
        base_dir=base_dir,
    )
    validation_settings = validate_table(
        table("validation"), VALIDATION_OPTIONS, source=source, where="validation"
    )
    _check_template(shadow_settings["prompt"], source, "shadow")
    _check_template(validation_settings["prompt"], source, "validation")

    suspects_raw = document["suspect"]
    if isinstance(suspects_raw, Mapping):
        suspects_raw = [suspects_raw]
    if not isinstance(suspects_raw, list) or not suspects_raw:
        raise ConfigError("needs at least one [[suspect]] table", source, "suspect")
    suspects: list[SuspectConfig] = []
    for i, raw in enumerate(suspects_raw):
        where = f"suspect {i + 1}" if not isinstance(raw, Mapping) else f"suspect {raw.get('name', i + 1)!s}"
        core, adapter = _plugin_table(
            raw,
            "suspect",
            plugins,
            use_key="use",
            core=SUSPECT_OPTIONS,
            source=source,
            where=where,
            base_dir=base_dir,
        )
        if any(s.name == core["name"] for s in suspects):
            raise ConfigError(f"suspect name {core['name']!r} is used twice", source, where)
        suspects.append(SuspectConfig(core["name"], adapter, core["truth"]))

    tests_raw = document.get("test", list(DEFAULT_TESTS))
    if isinstance(tests_raw, Mapping):
        tests_raw = [tests_raw]
    tests: list[TestConfig] = []
    for i, raw in enumerate(tests_raw):
        where = f"test {i + 1}"
        core, test = _plugin_table(
            raw,
            "test",
            plugins,
            use_key="use",
            core=TEST_OPTIONS,
            source=source,
            where=where,
            base_dir=base_dir,
        )
        name = core["name"] or core["use"]
        if any(t.name == name for t in tests):
            raise ConfigError(f"test name {name!r} is used twice; give one a `name`", source, where)
        tests.append(TestConfig(name, test))

    executor_raw = document.get("executor", {"use": "local"})
    _, executor = _plugin_table(
        executor_raw,
        "executor",
        plugins,
        use_key="use",
        core=PLUGIN_OPTIONS,
        source=source,
        where="executor",
        base_dir=base_dir,
    )

    def image_set(settings: dict[str, Any], offset: int) -> ImageSetConfig:
        set_seed = settings["seed"] if settings["seed"] is not None else seed * 1000 + offset
        return ImageSetConfig(settings["prompt"], settings["per_class"], set_seed, settings.get("batch_size"))

    negative_control = control_set = None
    if "negative_control" in document:
        control, negative_control = _plugin_table(
            table("negative_control"),
            "generator",
            plugins,
            use_key="use",
            core=CONTROL_OPTIONS,
            source=source,
            where="negative_control",
            base_dir=base_dir,
        )
        control_set = ImageSetConfig(
            shadow_settings["prompt"],
            control["per_class"] or shadow_settings["per_class"],
            control["seed"] if control["seed"] is not None else seed * 1000 + 3,
        )

    validation = image_set(validation_settings, 2)
    if validation.per_class < 1 or shadow_settings["per_class"] < 1:
        raise ConfigError("per_class must be at least 1", source, "validation")
    if validation.batch_size is None or validation.batch_size < 1:
        raise ConfigError("batch_size must be at least 1", source, "validation")
    return AuditConfig(
        source=source,
        seed=seed,
        task=task,
        generator=generator,
        shadow=image_set(shadow_settings, 1),
        trainer=trainer,
        validation=validation,
        suspects=suspects,
        tests=tests,
        executor=executor,
        negative_control=negative_control,
        control_set=control_set,
        document=dict(document),
    )


def _check_template(template: str, source: str, where: str) -> None:
    try:
        template.format(label="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"prompt {template!r} is not a valid template (use {{label}} for the class name): {exc!r}",
            source,
            where,
        ) from None
