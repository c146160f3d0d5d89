"""The fleet file: its tables, expanded into one ordinary audit document per (task, candidate
generator), and a folder of audit files read as a fleet (`expand`, `fleet_from_dict`, `fleet_from_folder`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import (
    DEFAULT_TESTS,
    TOP_LEVEL,
    AuditConfig,
    bare_message,
    config_from_dict,
    load_config,
    parse_toml,
    validate_table,
)
from ..errors import ConfigError, PluginError
from ..plugins import PluginSet
from ..records import Option

if TYPE_CHECKING:
    from ..engine import AuditReport


NONE = "none"
"""A suspect's `truth` when it was trained on none of the candidates."""

OTHER_GENERATORS = "{other-generators}"
"""In a `[[test]]` table, the audit's other candidates: as an element of a list, their names; as a value,
a table of their generator tables by name (`use` and the plugin's keys)."""

ACCUSED, CLEARED, UNSURE = "trained-on-generator", "not-trained-on-generator", "inconclusive"

FLEET_OPTIONS = (
    Option(
        "attribute_by",
        "str",
        None,
        help="the [[test]] (by its name) whose verdicts attribute each suspect (default: the one that "
        "governs the reports' finding: governs = true, else the calibrated rule, else the first)",
    ),
    Option(
        "known_sources",
        "list[str]",
        [],
        help="sources that are not candidates but that suspects may be trained on (real data, other "
        "models), allowed as a suspect's `truth`; such a suspect is rightly attributed to none",
    ),
)
TASK_KEYS = (
    Option("name", "str", None, help="the task's name (required with several tasks)"),
    Option("shadow", "table", None, help="[shadow] keys that differ for this task"),
    Option("validation", "table", None, help="[validation] keys that differ for this task"),
)
GENERATOR_KEYS = (
    Option("name", "str", None, help="the candidate's name (default: its `use`), unique"),
    Option("tasks", "list[str]", None, help="the tasks it audits (default: every task)"),
)
SUSPECT_KEYS = (
    Option("task", "str", None, help="the suspect's task (required with several tasks)"),
    Option("truth", "str", None, help="the candidate(s) it was trained on, a known source, or 'none'"),
)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
TOP = (*TOP_LEVEL, "fleet")


@dataclass(frozen=True)
class FleetSuspect:
    """A suspect of the fleet: its name, task, the candidates that audit it, and its truth as written
    (candidate names or known sources; `("none",)`; None where unknown)."""

    name: str
    task: str
    candidates: tuple[str, ...]
    truth: tuple[str, ...] | None = None

    @property
    def expected(self) -> frozenset[str] | None:
        """The candidates a right attribution names (empty: none of them), or None where unknown."""
        return None if self.truth is None else frozenset(self.truth) & frozenset(self.candidates)

    @property
    def truth_label(self) -> str | None:
        return None if self.truth is None else "+".join(self.truth)


@dataclass
class FleetAudit:
    """One candidate's audit of one task: an ordinary audit file (as a dict) and its validated config."""

    task: str
    generator: str
    document: dict[str, Any]
    path: str  # the audit's folder under the fleet's output, relative
    config: AuditConfig | None = None


@dataclass
class Fleet:
    source: str
    tasks: list[str]
    generators: list[str]
    suspects: list[FleetSuspect]
    audits: list[FleetAudit]
    attribute_by: str
    tests: list[str]
    known_sources: tuple[str, ...] = ()

    def audit(self, task: str, generator: str) -> FleetAudit:
        return next(a for a in self.audits if a.task == task and a.generator == generator)


@dataclass
class FleetResult:
    fleet: Fleet
    out_dir: Path
    reports: dict[tuple[str, str], AuditReport]
    attribution: dict[str, Any]
    errors: list[str] = field(default_factory=list)


# ---- the fleet file -------------------------------------------------------------------------------------


def _tables(document: Mapping[str, Any], key: str, source: str, required: bool) -> list[Mapping[str, Any]]:
    raw = document.get(key)
    if raw is None or (required and raw == []):
        if required:
            raise ConfigError(f"needs at least one [[{key}]] table", source)
        return []
    raw = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise ConfigError(f"[[{key}]] must be tables", source, key)
    return raw


def _split(table: Mapping[str, Any], keys: tuple[Option, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fleet's own keys of a table (validated later) and the rest, which go to the audit file."""
    names = {o.name for o in keys}
    return {k: v for k, v in table.items() if k in names}, {k: v for k, v in table.items() if k not in names}


def _name(value: Any, what: str, source: str, where: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} must be a name of letters, digits, '.', '_' or '-' (it names a folder)",
            source,
            where,
        )
    return value


def _expand_tests(
    tests: Sequence[Mapping[str, Any]], others: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each `[[test]]` table with "{other-generators}" replaced: in a list by the names of `others` (the
    audit's other candidates), as a value by their generator tables."""

    def replace(value: Any) -> Any:
        if value == OTHER_GENERATORS:
            return {name: dict(table) for name, table in others.items()}
        if isinstance(value, list):
            out: list[Any] = []
            for v in value:
                out += list(others) if v == OTHER_GENERATORS else [replace(v)]
            return out
        if isinstance(value, Mapping):
            return {k: replace(v) for k, v in value.items()}
        return value

    return [replace(t) for t in tests]


def default_attribution(raw_tests: list[Any], names: list[str]) -> str:
    """The test that attributes suspects when the fleet file does not say: the one that governs each
    audit's finding in its report (docs/report.md), so the fleet and the reports state the same verdict:
    the [[test]] with `governs = true`, else the first calibrated rule, else the first test."""
    for flag, value in (("governs", True), ("use", "calibrated")):
        for t, name in zip(raw_tests, names, strict=True):
            if isinstance(t, dict) and t.get(flag) == value:
                return name
    return names[0]


def expand(document: Mapping[str, Any], source: str = "<fleet>") -> Fleet:
    """The audits a fleet document makes, one per (task, candidate), as ordinary audit documents, without
    plugins (`fleet_from_dict` validates them). Checks the fleet's own keys; raises ConfigError naming
    the file, the table and the key."""
    for key in document:
        if key not in TOP:
            close = difflib.get_close_matches(key, TOP, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown top-level key {key!r}{hint}; known: {', '.join(TOP)}", source)
    fleet_table = document.get("fleet", {})
    if not isinstance(fleet_table, Mapping):
        raise ConfigError("must be a table", source, "fleet")
    settings = validate_table(fleet_table, FLEET_OPTIONS, source=source, where="fleet")

    tasks: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # name -> (fleet keys, [task] table)
    raw_tasks = _tables(document, "task", source, required=True)
    for i, raw in enumerate(raw_tasks):
        own, rest = _split(raw, TASK_KEYS)
        where = f"task {own.get('name') or i + 1}"
        own = validate_table(own, TASK_KEYS, source=source, where=where)
        if len(raw_tasks) > 1 and own["name"] is None:
            raise ConfigError("missing key 'name': a fleet with several tasks names each", source, where)
        name = _name(own["name"], "task name", source, where) if own["name"] is not None else ""
        if name in tasks:
            raise ConfigError(f"task name {name!r} is used twice", source, where)
        tasks[name] = (own, rest)
    where_task = {t: (f"task {t}" if t else "task") for t in tasks}

    known = tuple(settings["known_sources"])
    generators: dict[str, tuple[list[str], dict[str, Any]]] = {}  # name -> (tasks, [generator] table)
    for i, raw in enumerate(_tables(document, "generator", source, required=True)):
        own, rest = _split(raw, GENERATOR_KEYS)
        label = own.get("name") or rest.get("use") or i + 1
        where = f"generator {label}"
        own = validate_table(own, GENERATOR_KEYS, source=source, where=where)
        if own["name"] is None and not isinstance(rest.get("use"), str):
            raise ConfigError("missing required key 'use' (generator plugin)", source, where)
        name = _name(own["name"] or rest["use"], "generator name", source, where)
        if name in generators:
            raise ConfigError(
                f"generator name {name!r} is used twice; give one a `name`"
                if own["name"] is None
                else f"generator name {name!r} is used twice",
                source,
                where,
            )
        if name == NONE or name in known:
            raise ConfigError(f"generator name {name!r} is also a known source or 'none'", source, where)
        for t in own["tasks"] or []:
            if t not in tasks:
                raise ConfigError(f"key 'tasks': no task named {t!r}; tasks: {sorted(tasks)}", source, where)
        generators[name] = (list(own["tasks"] or tasks), rest)

    raw_tests = _tables(document, "test", source, required=False) or [dict(t) for t in DEFAULT_TESTS]
    test_names = []
    for i, t in enumerate(raw_tests):
        name = t.get("name") or t.get("use")
        test_names.append(name if isinstance(name, str) else f"test {i + 1}")
    attribute_by = settings["attribute_by"] or default_attribution(raw_tests, test_names)
    if attribute_by not in test_names:
        raise ConfigError(
            f"key 'attribute_by': no [[test]] named {attribute_by!r}; tests: {test_names}", source, "fleet"
        )

    suspects: list[FleetSuspect] = []
    tables: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    for i, raw in enumerate(_tables(document, "suspect", source, required=False)):
        own, rest = _split(raw, SUSPECT_KEYS)
        name = rest.get("name")
        where = f"suspect {name if isinstance(name, str) else i + 1}"
        if not isinstance(name, str):
            raise ConfigError("missing required key 'name' (a name for this suspect)", source, where)
        if any(s.name == name for s in suspects):
            raise ConfigError(f"suspect name {name!r} is used twice", source, where)
        truth = own.pop("truth", None)
        own = validate_table(own, SUSPECT_KEYS[:1], source=source, where=where)
        if own["task"] is None and len(tasks) > 1:
            raise ConfigError(f"missing key 'task': one of {sorted(tasks)}", source, where)
        task = own["task"] if own["task"] is not None else next(iter(tasks))
        if task not in tasks:
            raise ConfigError(f"key 'task': no task named {task!r}; tasks: {sorted(tasks)}", source, where)
        candidates = tuple(g for g, (ts, _) in generators.items() if task in ts)
        suspects.append(FleetSuspect(name, task, candidates, _truth(truth, candidates, known, source, where)))
        tables[task].append(rest)

    audits = []
    for task, (own, task_table) in tasks.items():
        candidates = [g for g, (ts, _) in generators.items() if task in ts]
        if not candidates:
            raise ConfigError(
                "no [[generator]] audits this task (see their `tasks`)", source, where_task[task]
            )
        for generator in candidates:
            doc: dict[str, Any] = {"seed": document.get("seed", 0), "task": dict(task_table)}
            doc["generator"] = dict(generators[generator][1])
            for key in ("shadow", "validation"):
                shared = document.get(key)
                if own[key] and isinstance(shared, Mapping | None):
                    doc[key] = {**(shared or {}), **own[key]}
                elif shared is not None:
                    doc[key] = shared
            for key in ("negative_control", "positive_control"):
                if key in document:
                    doc[key] = document[key]
            doc["suspect"] = [
                {**t, **({"truth": ACCUSED if generator in s.truth else CLEARED} if s.truth else {})}
                for s, t in zip([s for s in suspects if s.task == task], tables[task], strict=True)
            ]
            others = {g: generators[g][1] for g in candidates if g != generator}
            doc["test"] = _expand_tests(raw_tests, others)
            if "executor" in document:
                doc["executor"] = document["executor"]
            if "seed" not in document:
                del doc["seed"]
            audits.append(FleetAudit(task, generator, doc, f"{task}/{generator}" if task else generator))
    return Fleet(source, list(tasks), list(generators), suspects, audits, attribute_by, test_names, known)


def _truth(
    value: Any, candidates: tuple[str, ...], known: tuple[str, ...], source: str, where: str
) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"key 'truth' must be str or list[str], got {value!r}", source, where)
    allowed = [*candidates, *known, NONE]
    for v in values:
        if v not in allowed:
            close = difflib.get_close_matches(v, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"key 'truth': {v!r} is not a candidate of this suspect's task, a [fleet] known_sources "
                f"entry or 'none'{hint}; allowed: {allowed}",
                source,
                where,
            )
    if NONE in values and len(values) > 1:
        raise ConfigError("key 'truth': 'none' cannot be combined with sources", source, where)
    return tuple(values)


def fleet_from_dict(
    document: Mapping[str, Any],
    plugins: PluginSet,
    *,
    source: str = "<fleet>",
    base_dir: Path | None = None,
    executor: str | None = None,
) -> Fleet:
    """Expand a fleet document and validate each of its audits as an audit file (every plugin key, each
    decision test's settings), before any work. `executor` replaces `[executor] use` (its settings are
    kept when it names the same plugin). Errors name the fleet file, its table and the key."""
    document = _with_executor(document, executor)
    _check_generator_plugins(document, plugins, source)
    fleet = expand(document, source)
    for task in fleet.tasks:
        if not any(s.task == task for s in fleet.suspects):
            raise ConfigError("no [[suspect]] of this task", source, f"task {task}" if task else "suspect")
    for audit in fleet.audits:
        audit.config = _validate(audit, fleet, plugins, source, base_dir)
    return fleet


def _check_generator_plugins(document: Mapping[str, Any], plugins: PluginSet, source: str) -> None:
    """An unknown generator plugin is said as such, before anything else can take its name for a
    candidate's (a `truth` that names an unnamed [[generator]] by its `use`)."""
    tables = document.get("generator")
    for i, table in enumerate(tables if isinstance(tables, list) else []):
        use = table.get("use") if isinstance(table, Mapping) else None
        if isinstance(use, str):
            try:
                plugins.get("generator", use)
            except PluginError as exc:
                name = table.get("name") if isinstance(table.get("name"), str) else use
                raise ConfigError(f"key 'use': {exc}", source, f"generator {name or i + 1}") from None


def _with_executor(document: Mapping[str, Any], executor: str | None) -> Mapping[str, Any]:
    if executor is None:
        return document
    table = document.get("executor") or {}
    same = isinstance(table, Mapping) and table.get("use", "local") == executor
    return {**document, "executor": {**table, "use": executor} if same else {"use": executor}}


def _validate(
    audit: FleetAudit, fleet: Fleet, plugins: PluginSet, source: str, base_dir: Path | None
) -> AuditConfig:
    """`config_from_dict` of one audit, its errors pointed at the fleet's tables."""
    try:
        return config_from_dict(audit.document, plugins, source=source, base_dir=base_dir)
    except ConfigError as exc:
        if exc.key is None:
            raise
        key = {
            "generator": f"generator {audit.generator}",
            "task": f"task {audit.task}" if audit.task else "task",
        }.get(exc.key, exc.key)
        message = bare_message(exc)
        if exc.key.startswith("test") and len(fleet.audits) > 1:
            message += f" (in the audit by {audit.generator})"
        raise ConfigError(message, exc.file, key) from None


def load_fleet(path: str | Path, plugins: PluginSet, executor: str | None = None) -> Fleet:
    """A fleet file, or a folder of ordinary audit files (one candidate each, named by the file)."""
    path = Path(path)
    try:
        if path.is_dir():
            return fleet_from_folder(path, plugins, executor)
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such file or folder", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", str(path)) from None
    document = parse_toml(data, str(path))  # a binary file, a BOM, another encoding: said as such
    return fleet_from_dict(
        document, plugins, source=str(path), base_dir=path.resolve().parent, executor=executor
    )


def fleet_from_folder(folder: Path, plugins: PluginSet, executor: str | None = None) -> Fleet:
    """Every `*.toml` of `folder` as one candidate's audit (the candidate named by the file's stem).
    Audits of the same task (classes and image size) that name the same suspect must describe the same
    model; its truth is the candidates whose audit says `trained-on-generator`. The first file's first
    test attributes (every file must have a test of that name)."""
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ConfigError("no *.toml audit files in this folder", str(folder))
    configs = []
    for f in files:
        _name(f.stem, "audit file name", str(f), "")
        config = load_config(f, plugins)
        if executor is not None:
            document = _with_executor(config.document, executor)
            config = config_from_dict(document, plugins, source=str(f), base_dir=f.resolve().parent)
        configs.append(config)
    task_of = {}
    for config in configs:
        task_of.setdefault((config.task.classes, config.task.image_size), f"task{len(task_of) + 1}")
    one_task = len(task_of) == 1
    attribute_by = configs[0].tests[0].name
    audits, seen = [], {}
    for f, config in zip(files, configs, strict=True):
        if attribute_by not in [t.name for t in config.tests]:
            raise ConfigError(f"has no [[test]] named {attribute_by!r} (the first file's first)", str(f))
        task = "" if one_task else task_of[(config.task.classes, config.task.image_size)]
        for s, public in zip(config.suspects, config.public_tables["suspect"], strict=True):
            table = {k: v for k, v in public.items() if k != "truth"}
            first = seen.setdefault(s.name, (task, table, f))
            if first[0] != task or first[1] != table:
                raise ConfigError(
                    f"suspect {s.name!r} is not the same model as in {first[2]} (a suspect's name must "
                    "mean one model in every audit file of the folder)",
                    str(f),
                    f"suspect {s.name}",
                )
        audits.append(FleetAudit(task, f.stem, config.document, f.stem, config))
    suspects = []
    for name, (task, _, _) in seen.items():
        judged = [(a.generator, s) for a in audits for s in a.config.suspects if s.name == name]
        truths = [s.truth for _, s in judged]
        truth = None
        if all(t is not None for t in truths):
            truth = tuple(g for g, s in judged if s.truth == ACCUSED) or (NONE,)
        suspects.append(FleetSuspect(name, task, tuple(g for g, _ in judged), truth))
    tests = list(dict.fromkeys(t.name for c in configs for t in c.tests))
    tasks = list(dict.fromkeys(a.task for a in audits))
    return Fleet(str(folder), tasks, [a.generator for a in audits], suspects, audits, attribute_by, tests)
