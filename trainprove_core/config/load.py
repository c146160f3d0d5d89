"""Reading an audit file: TOML in, every table validated, cross-table checks, a `AuditConfig` out."""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..records import KIND
from ..task import Task
from .capacity import check_memory
from .tables import (
    SEED,
    SHADOW_OPTIONS,
    TABLES,
    TOP_LEVEL,
    AuditConfig,
    ImageSetConfig,
    LoadedTable,
    PluginTable,
    SuspectConfig,
    TableSpec,
    TestConfig,
)
from .validate import check_bounds, check_type, load_raw_table, table_where

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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


def _check_top_level(document: Mapping[str, Any], source: str) -> int:
    """The top-level keys, the required tables, and the seed (returned)."""
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
    if not check_type(seed, SEED):
        raise ConfigError(f"top-level key 'seed' must be int, got {type(seed).__name__} {seed!r}", source)
    out_of_bounds = check_bounds("seed", seed, SEED)
    if out_of_bounds:
        raise ConfigError(f"top-level {out_of_bounds}", source)
    return seed


def _load_tables(
    document: Mapping[str, Any], plugins: Any, source: str, base_dir: Path
) -> tuple[dict[str, list[LoadedTable]], dict[str, Any], Task]:
    """Every table of the document validated, in `TABLES` order, with the checks across tables that need
    an earlier one (the generator's classes against the task, prompts against the generator); each
    table's masked copy; the task."""
    loaded: dict[str, list[LoadedTable]] = {}
    public: dict[str, Any] = {}
    task: Task | None = None
    for spec in TABLES:
        raw = document.get(spec.name, spec.default)
        if raw is None:
            continue
        if spec.name == "positive_control":
            raw = inherit_shadow(raw, document.get("shadow"))
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
            load_raw_table(r, spec, plugins, source=source, where=table_where(spec, r, i), base_dir=base_dir)
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
    return loaded, public, task


def config_from_dict(
    document: Mapping[str, Any], plugins: Any, *, source: str = "<audit>", base_dir: Path | None = None
) -> AuditConfig:
    """Validate an audit given as a dict (what `load_config` does after parsing)."""
    base_dir = base_dir or Path.cwd()
    seed = _check_top_level(document, source)
    loaded, public, task = _load_tables(document, plugins, source, base_dir)

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


def inherit_shadow(control: Any, shadow: Any) -> Any:
    """`[positive_control]` as the trainer sees it: the keys of `[shadow]`'s trainer, changed where the
    control's table says so. A positive control is the shadow's recipe with what a suspect's trainer would
    vary (another architecture, length, learning rate, augmentation), so that it learns the task the way the
    shadow does; left to the trainer's defaults it would not (the paper's CIFAR recipe on a small task).
    Inherited only where both tables use the same trainer; the core keys (prompt, per_class, seed) never."""
    if not isinstance(control, Mapping) or not isinstance(shadow, Mapping):
        return control
    trainer_key = "trainer"
    default = next(o.default for o in SHADOW_OPTIONS if o.name == trainer_key)
    if control.get(trainer_key, default) != shadow.get(trainer_key, default):
        return control
    core = {o.name for o in SHADOW_OPTIONS}
    inherited = {k: v for k, v in shadow.items() if k not in core and k not in control}
    return {**control, **inherited}


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
    loaded = load_raw_table(
        raw, spec, plugins, source=source, where=spec.name, base_dir=base_dir or Path.cwd()
    )
    if spec.kind is KIND["generator"] and task is not None:
        _check_generator_classes(loaded, task, plugins, source, spec.name)
    return loaded
