"""A fleet audit: which of several candidate generators each of many suspects was trained on.

    fleet file ─▶ one ordinary audit per (task, candidate generator), with every suspect of that task
              ─▶ run_audit on each (cached and resumable like any audit, on the file's [executor])
              ─▶ per suspect: the candidates whose audit accuses it, by one decision test (`attribute_by`)
              ─▶ attribution.md (for people, read first), attribution.json (for machines), index.html;
                 each audit's audit.toml, report.json and report.html in <out>/<generator>/
                 (<out>/<task>/<generator>/ with several tasks)

A fleet is a thin layer: it writes ordinary audit documents, validates them with `config_from_dict` and
runs them with `run_audit`, so image sets, shadow models and answers are shared between its audits
through the store (an image set of a candidate is made once, whichever audits use it) and a second run
does no work. A folder of ordinary audit files is a fleet too: each file is one candidate's audit, and
suspects of the same name are the same suspect. docs/fleet.md describes the file and the report.
"""

from __future__ import annotations

import dataclasses
import difflib
import html
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import progress
from .config import (
    DEFAULT_TESTS,
    TOP_LEVEL,
    AuditConfig,
    _bare_message,
    config_from_dict,
    load_config,
    tomllib,
    validate_table,
)
from .errors import ConfigError
from .plugins import PluginSet
from .records import Executor, Option
from .store import Store, canonical_json

if TYPE_CHECKING:
    from .engine import AuditReport

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
        help="the [[test]] (by its name) whose verdicts attribute each suspect (default: the first)",
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
    if raw is None:
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
    attribute_by = settings["attribute_by"] or test_names[0]
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
    fleet = expand(document, source)
    for task in fleet.tasks:
        if not any(s.task == task for s in fleet.suspects):
            raise ConfigError("no [[suspect]] of this task", source, f"task {task}" if task else "suspect")
    for audit in fleet.audits:
        audit.config = _validate(audit, fleet, plugins, source, base_dir)
    return fleet


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
        message = _bare_message(exc)
        if exc.key.startswith("test") and len(fleet.audits) > 1:
            message += f" (in the audit by {audit.generator})"
        raise ConfigError(message, exc.file, key) from None


def load_fleet(path: str | Path, plugins: PluginSet, executor: str | None = None) -> Fleet:
    """A fleet file, or a folder of ordinary audit files (one candidate each, named by the file)."""
    path = Path(path)
    if path.is_dir():
        return fleet_from_folder(path, plugins, executor)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file or folder", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", str(path)) from None
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


# ---- running it -----------------------------------------------------------------------------------------


def check_suspects(fleet: Fleet, plugins: PluginSet, store: Store) -> None:
    """Open every suspect once (checkpoint read, label space mapped) before any work, so a bad one stops
    the fleet before its first audit, not halfway through."""
    from .engine import AuditRun
    from .executors import LocalExecutor

    opened: set[tuple[str, str]] = set()
    for audit in fleet.audits:
        assert audit.config is not None
        fresh = [s for s in audit.config.suspects if (audit.task, s.name) not in opened]
        if not fresh:
            continue
        # Opening suspects runs no work: the local executor, not the audit's (no cluster started here).
        config = dataclasses.replace(audit.config, suspects=fresh)
        with AuditRun(config, plugins, store, show_progress=False, executor=LocalExecutor()) as run:
            run.open_suspects()
            run.close_adapters()
        opened |= {(audit.task, s.name) for s in fresh}


def run_fleet(
    fleet: Fleet,
    plugins: PluginSet,
    out_dir: str | Path,
    store: Store,
    show_progress: bool = True,
    html: bool = True,
    echo: Callable[[str], None] | None = None,
    started: float | None = None,
    executor: Executor | None = None,
) -> FleetResult:
    """Run every audit of `fleet` (each writes its report under `out_dir`), attribute every suspect,
    write attribution.md, attribution.json and index.html; return the result. `echo` gets one line per
    audit as it ends (the seconds since `started`).

    Audits whose `[executor]` tables are the same share one executor (one Ray cluster, whose workers
    keep their models built from one audit to the next), closed when the fleet ends, on errors too; an
    `executor` passed in runs every audit and is left open."""
    from .engine import audit_executor, run_audit

    started = started or time.time()
    echo = echo or (lambda line: None)
    out_dir = Path(out_dir)
    reports: dict[tuple[str, str], AuditReport] = {}
    errors: list[str] = []
    opened: dict[str, Executor] = {}  # by the audit's [executor] table
    # One plan: this first step, then each audit adds its own as it starts.
    try:
        with progress.plan(1, f"fleet {Path(fleet.source).name}", show_progress):
            with progress.step("open every suspect", enabled=show_progress):
                check_suspects(fleet, plugins, store)
            out_dir.mkdir(parents=True, exist_ok=True)
            for audit in fleet.audits:
                assert audit.config is not None
                audit_dir = out_dir / audit.path
                audit_dir.mkdir(parents=True, exist_ok=True)
                (audit_dir / "audit.toml").write_text(toml_dumps(audit.config.public_document()), "utf-8")
                runs_on = executor
                if runs_on is None:
                    table = audit.config.executor
                    key = canonical_json([table.use, table.settings])
                    if key not in opened:
                        opened[key] = audit_executor(audit.config, plugins)
                    runs_on = opened[key]
                result = run_audit(
                    audit.config, plugins, audit_dir, store, show_progress, html=html, executor=runs_on
                )
                reports[(audit.task, audit.generator)] = result.report
                errors += [f"{audit.path}: {e}" for e in result.errors]
                echo(_audit_line(audit, result.report, time.time() - started))
    finally:
        for opened_executor in opened.values():
            opened_executor.close()  # part of the Executor protocol
    attribution = attribute(fleet, reports)
    write_attribution(attribution, out_dir)
    return FleetResult(fleet, out_dir, reports, attribution, errors)


def _audit_line(audit: FleetAudit, report: AuditReport, seconds: float) -> str:
    verdicts = report.verdicts
    who = f"{audit.generator} on {audit.task}" if audit.task else audit.generator
    if verdicts and all(v["truth"] is not None for v in verdicts):
        said = f"{sum(bool(v['correct']) for v in verdicts)}/{len(verdicts)} verdicts right"
    else:
        count = {d: sum(v["decision"] == d for v in verdicts) for d in (ACCUSED, CLEARED, UNSURE)}
        said = f"{count[ACCUSED]} accused, {count[CLEARED]} cleared, {count[UNSURE]} inconclusive"
    errors = f", {len(report.errors)} errors" if report.errors else ""
    return f"  defender {who:<12} {said}{errors} ({seconds:.0f} s)"


# ---- attribution ----------------------------------------------------------------------------------------


def _reason(verdict: Mapping[str, Any]) -> str:
    """Why a test decided as it did, in one sentence: its `details["reason"]`, or the explanation's last
    sentence (the verdict's own conclusion; the whole explanation is in the audit's report)."""
    reason = (verdict.get("details") or {}).get("reason")
    if isinstance(reason, str) and reason:
        return reason
    explanation = str(verdict.get("explanation", "")).removeprefix(f"{verdict['suspect']}: ")
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", explanation.strip())[-1]


def attribute_one(suspect: FleetSuspect, decisions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A suspect's attribution from one test's decision in each candidate's audit (`decisions`:
    candidate -> {"decision", "reason"}; decision "error" where it could not be judged)."""
    accusers = [g for g in suspect.candidates if decisions[g]["decision"] == ACCUSED]
    unsure = [g for g in suspect.candidates if decisions[g]["decision"] not in (ACCUSED, CLEARED)]
    said: dict[tuple[str, str], list[str]] = {}  # (decision, reason) -> candidates, so each reason once
    for g in unsure:
        said.setdefault((decisions[g]["decision"], decisions[g]["reason"]), []).append(g)
    why = "; ".join(f"{d} for {', '.join(gs)}: {reason}" for (d, reason), gs in said.items())
    if len(accusers) == 1:
        outcome, text = "from", f"from {accusers[0]}"
    elif accusers:
        outcome, text = "several", "from several: " + ", ".join(accusers)
    elif unsure:
        outcome, text = "undecided", "undecided"
        cleared = len(suspect.candidates) - len(unsure)
        if cleared:
            why += f"; cleared by the other {cleared}"
    else:
        outcome, text = "none", "none of the candidates"
    expected = suspect.expected
    correct = None if outcome == "undecided" or expected is None else set(accusers) == expected
    return {
        "attribution": outcome,
        "text": text,
        "generators": accusers,
        "undecided": unsure,
        "why": why,
        "correct": correct,
    }


OUTCOMES = {
    "from": "from one candidate",
    "several": "from several",
    "none": "none of the candidates",
    "undecided": "undecided",
}


def attribute(fleet: Fleet, reports: Mapping[tuple[str, str], AuditReport]) -> dict[str, Any]:
    """The attribution report (attribution.json): per suspect, the verdict of every test in every
    candidate's audit with a link to its evidence, and its attribution by `fleet.attribute_by`; per test,
    the attribution counts and, where the truth is known, the confusion table and error rates."""
    rows = []
    for s in fleet.suspects:
        verdicts: dict[str, dict[str, Any]] = {}
        for g in s.candidates:
            audit = fleet.audit(s.task, g)
            report = reports[(s.task, g)]
            entry = next(e for e in report.suspects if e["name"] == s.name)
            cells = {}
            for test in fleet.tests:
                found = [
                    (i, v)
                    for i, v in enumerate(report.verdicts)
                    if v["suspect"] == s.name and v["test"] == test
                ]
                if found:
                    i, v = found[0]
                    cells[test] = {
                        "decision": v["decision"],
                        "reason": _reason(v),
                        "statistic": v["statistic"],
                        "correct": v["correct"],
                        "evidence": f"{audit.path}/report.html#v{i}",
                    }
                elif entry.get("error"):
                    cells[test] = {"decision": "error", "reason": entry["error"], "evidence": None}
            verdicts[g] = {
                "report": f"{audit.path}/report.html",
                "report_json": f"{audit.path}/report.json",
                "accuracy": entry.get("accuracy"),
                "tests": cells,
            }
        by_test = {
            test: attribute_one(
                s,
                {
                    g: verdicts[g]["tests"].get(test, {"decision": "error", "reason": "no verdict"})
                    for g in s.candidates
                },
            )
            for test in fleet.tests
        }
        rows.append(
            {
                "suspect": s.name,
                "task": s.task,
                "truth": list(s.truth) if s.truth is not None else None,
                **by_test[fleet.attribute_by],
                "by_test": by_test,
                "verdicts": verdicts,
            }
        )
    flat = [
        {**v, "task": task, "defender": generator}
        for (task, generator), report in reports.items()
        for v in report.verdicts
    ]
    tests = {}
    for test in fleet.tests:
        counts = {o: sum(r["by_test"][test]["attribution"] == o for r in rows) for o in OUTCOMES}
        judged = [r["by_test"][test]["correct"] for r in rows if r["truth"] is not None]
        mine = [v for v in flat if v["test"] == test]
        tests[test] = {
            "counts": counts,
            "right": sum(c is True for c in judged),
            "wrong": sum(c is False for c in judged),
            "with_truth": len(judged),
            "confusion": confusion(fleet, mine) if judged and mine else None,
            "rates": rates(mine) if judged and mine else None,
        }
    return {
        "fleet": fleet.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "attribute_by": fleet.attribute_by,
        "tests": fleet.tests,
        "descriptions": _descriptions(reports),
        "tasks": fleet.tasks,
        "generators": fleet.generators,
        "audits": [
            {
                "task": a.task,
                "generator": a.generator,
                "report": f"{a.path}/report.html",
                "report_json": f"{a.path}/report.json",
                "audit_file": f"{a.path}/audit.toml",
                "errors": reports[(a.task, a.generator)].errors,
                "warnings": reports[(a.task, a.generator)].warnings,
            }
            for a in fleet.audits
        ],
        "suspects": rows,
        "by_test": tests,
        "verdicts": flat,
    }


def _descriptions(reports: Mapping[tuple[str, str], AuditReport]) -> dict[str, str]:
    """Each test's plugin, as the reports record it (test name -> plugin name)."""
    return {v["test"]: v["plugin"] for r in reports.values() for v in r.verdicts}


def rates(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Confusion counts and error rates of one decision test's verdicts (each with its `truth`)."""
    pos = [v for v in verdicts if v["truth"] == ACCUSED]
    neg = [v for v in verdicts if v["truth"] == CLEARED]
    decided = [v for v in verdicts if v["decision"] != UNSURE]

    def said(vs: Sequence[Mapping[str, Any]], decision: str) -> int:
        return sum(v["decision"] == decision for v in vs)

    return {
        "suspects": len(verdicts),
        "accuracy": sum(bool(v["correct"]) for v in verdicts) / len(verdicts) if verdicts else None,
        "false_accusation_rate": said(neg, ACCUSED) / len(neg) if neg else None,
        "false_clearing_rate": said(pos, CLEARED) / len(pos) if pos else None,
        "abstention_rate": 1 - len(decided) / len(verdicts) if verdicts else None,
        "false_accusations": said(neg, ACCUSED),
        "negatives": len(neg),
        "false_clearings": said(pos, CLEARED),
        "positives": len(pos),
    }


def confusion(fleet: Fleet, verdicts: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """rows: the suspects' true sources; columns: the candidate that audits; cell: [accused, verdicts,
    inconclusive]. Suspects without a truth are left out."""
    truth = {s.name: s.truth_label for s in fleet.suspects}
    labels = [t for t in (*fleet.generators, *fleet.known_sources, NONE) if t in truth.values()]
    labels += [t for t in dict.fromkeys(truth.values()) if t is not None and t not in labels]
    table = {t: {g: [0, 0, 0] for g in fleet.generators} for t in labels}
    for v in verdicts:
        row = truth.get(v["suspect"])
        if row is None:
            continue
        cell = table[row][v["defender"]]
        cell[0] += v["decision"] == ACCUSED
        cell[1] += 1
        cell[2] += v["decision"] == UNSURE
    return table


EXPLAIN = (
    "Each row is the source a suspect was trained on, each column the generator that audits it; a cell k/n "
    "says k of the n suspects of that row were flagged (judged trained-on-generator) by that defender, "
    "(m?) that m of them were judged inconclusive. Right is n/n where the row is the defender and 0/n "
    "everywhere else."
)


def format_confusion(table: Mapping[str, Mapping[str, list[int]]], label: Callable[[str], str] = str) -> str:
    """The confusion table as fixed-width text (`label` shortens the names)."""
    columns = list(next(iter(table.values()), {}))
    width = max([16, *(len(label(c)) + 2 for c in columns)])
    lines = ["suspect trained on \\ defender".ljust(30) + "".join(label(c).rjust(width) for c in columns)]
    for source, row in table.items():
        cells = []
        for c in columns:
            flagged, n, unsure = row[c]
            cells.append((f"{flagged}/{n}" + (f" ({unsure}?)" if unsure else "")).rjust(width))
        lines.append(label(source).ljust(30) + "".join(cells))
    return "\n".join(lines)


def format_rates(r: Mapping[str, Any]) -> str:
    def rate(k: int, n: int) -> str:
        return f"{k / n:.3f} ({k}/{n})" if n else "n/a"

    return (
        f"verification accuracy {r['accuracy']:.3f}   false-accusation rate "
        f"{rate(r['false_accusations'], r['negatives'])}   false-clearing rate "
        f"{rate(r['false_clearings'], r['positives'])}   inconclusive "
        f"{rate(round(r['abstention_rate'] * r['suspects']), r['suspects'])}"
    )


# ---- the report -----------------------------------------------------------------------------------------


def _counts_line(entry: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{entry['counts'][o]} {OUTCOMES[o]}" for o in OUTCOMES)
    if entry["with_truth"]:
        undecided = entry["with_truth"] - entry["right"] - entry["wrong"]
        counts += (
            f"; against the truth of {entry['with_truth']}: {entry['right']} right, {entry['wrong']} wrong, "
            f"{undecided} undecided"
        )
    return counts


def summary_lines(attribution: Mapping[str, Any]) -> list[str]:
    """The attribution, one line per suspect, and the counts: what `trainprove fleet` prints."""
    rows = attribution["suspects"]
    several_tasks = len(attribution["tasks"]) > 1
    width = max([len(r["suspect"]) for r in rows] + [8])
    lines = []
    for r in rows:
        task = f" [{r['task']}]" if several_tasks else ""
        mark = {True: "  (right)", False: f"  (WRONG: truth {'+'.join(r['truth'] or [])})"}.get(
            r["correct"], ""
        )
        lines.append(f"  {r['suspect']:<{width}}{task}  {r['text']}{mark}")
        if r["attribution"] == "undecided":
            lines.append(f"  {'':<{width}}  why: {r['why']}")
    by = attribution["attribute_by"]
    lines.append(f"attribution by {by}: {_counts_line(attribution['by_test'][by])}")
    return lines


CELL = {ACCUSED: ("acc", "accused"), CLEARED: ("clr", "cleared"), UNSURE: ("unk", "inconclusive")}
"""A decision's CSS class and word in the report's cells."""

LEAD = (
    "Which candidate generator's images was each suspect trained on? Each suspect was audited once "
    "per candidate generator (one audit each, with its own shadow model and validation images); a "
    "candidate *accuses* a suspect when its audit finds the suspect trained on its images. A suspect "
    "is **from G** when exactly G accuses it, **from several** when more than one does, **none of the "
    "candidates** when every one clears it, and **undecided** when none accuses it and at least one "
    "could not decide (the reason is given)."
)


def render_markdown(attribution: Mapping[str, Any]) -> str:
    by = attribution["attribute_by"]
    rows = attribution["suspects"]
    several_tasks = len(attribution["tasks"]) > 1
    has_truth = any(r["truth"] is not None for r in rows)
    out = [
        f"# Fleet audit: {Path(attribution['fleet']).name}",
        "",
        LEAD,
        "",
        f"Decided by the test `{by}` (plugin `{attribution['descriptions'].get(by, by)}`); "
        f"{len(rows)} suspects, {len(attribution['generators'])} candidates, "
        f"{len(attribution['audits'])} audits. Each verdict links to its evidence in that audit's report.",
        "",
        f"**{_counts_line(attribution['by_test'][by])}.**",
        "",
        "| suspect |"
        + (" task |" if several_tasks else "")
        + " attribution |"
        + (" truth |" if has_truth else ""),
        "|---|" + ("---|" if several_tasks else "") + "---|" + ("---|" if has_truth else ""),
    ]
    for r in rows:
        truth = ""
        if has_truth:
            mark = {True: " ✓", False: " ✗"}.get(r["correct"], "")
            truth = f" {'+'.join(r['truth']) if r['truth'] else '?'}{mark} |"
        task = f" {r['task']} |" if several_tasks else ""
        out.append(f"| {r['suspect']} |{task} {r['text']} |{truth}")
    undecided = [r for r in rows if r["attribution"] == "undecided"]
    if undecided:
        out += ["", "## Why undecided", ""]
        out += [f"- **{r['suspect']}**: {r['why']}" for r in undecided]
    partly = [r for r in rows if r["attribution"] != "undecided" and r["undecided"]]
    if partly:
        out += ["", "## Attributed, though some candidates could not decide", ""]
        out += [f"- **{r['suspect']}** ({r['text']}): {r['why']}" for r in partly]
    out += ["", f"## Every verdict of `{by}`", ""]
    generators = attribution["generators"]
    out.append("| suspect | " + " | ".join(generators) + " |")
    out.append("|---|" + "---|" * len(generators))
    for r in rows:
        cells = []
        for g in generators:
            cell = (r["verdicts"].get(g) or {}).get("tests", {}).get(by)
            said = CELL.get(cell["decision"], ("", cell["decision"]))[1] if cell else ""
            cells.append(f"[{said}]({cell['evidence']})" if cell and cell["evidence"] else said)
        out.append(f"| {r['suspect']} | " + " | ".join(cells) + " |")
    if len(attribution["tests"]) > 1:
        out += ["", "## The other tests", ""]
        out += [
            f"- `{t}`: {_counts_line(attribution['by_test'][t])}" for t in attribution["tests"] if t != by
        ]
    benchmark = [t for t in attribution["tests"] if attribution["by_test"][t]["confusion"]]
    if benchmark:
        out += ["", "## Against the truth (benchmark)", "", EXPLAIN, ""]
        for t in benchmark:
            entry = attribution["by_test"][t]
            out += [
                f"`{t}`:",
                "",
                "```",
                format_confusion(entry["confusion"]),
                "",
                format_rates(entry["rates"]),
            ]
            out += ["```", ""]
    out += ["", "## Evidence", ""]
    for a in attribution["audits"]:
        who = f"{a['generator']} on {a['task']}" if a["task"] else a["generator"]
        problems = f" — {len(a['errors'])} errors" if a["errors"] else ""
        out.append(
            f"- {who}: [report.html]({a['report']}), [report.json]({a['report_json']}), "
            f"[audit.toml]({a['audit_file']}){problems}"
        )
    return "\n".join(out) + "\n"


STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.acc{background:#f8d7d3}.clr{background:#d9efd9}.unk{background:#fdf1c7}
.err{background:#e6e6e6}.big{font-size:1.1em}a{color:#0645ad}.why{color:#555;font-size:.9em}
.bad{color:#b00020;font-weight:bold}pre{background:#f6f6f6;padding:.6em;overflow:auto}"""


def _inline_markdown(text: str) -> str:
    """**bold** and *italic* of an escaped text, as HTML."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def render_html(attribution: Mapping[str, Any]) -> str:
    """A small self-contained page (no scripts, nothing fetched): the attribution of every suspect with
    each candidate's verdict linked to its evidence, then the other tests and the benchmark."""
    e = html.escape
    by = attribution["attribute_by"]
    rows = attribution["suspects"]
    generators = attribution["generators"]
    several_tasks = len(attribution["tasks"]) > 1
    has_truth = any(r["truth"] is not None for r in rows)
    name = Path(attribution["fleet"]).name

    def matrix(test: str) -> str:
        head = "<th>suspect</th>" + ("<th>task</th>" if several_tasks else "") + "<th>attribution</th>"
        head += "<th>truth</th>" if has_truth else ""
        head += "".join(f"<th>{e(g)}</th>" for g in generators)
        body = []
        for r in rows:
            a = r["by_test"][test]
            mark = {True: " ✓", False: " <span class='bad'>✗</span>"}.get(a["correct"], "")
            cells = f"<td><b>{e(r['suspect'])}</b></td>"
            cells += f"<td>{e(r['task'])}</td>" if several_tasks else ""
            why = f"<div class='why'>{e(a['why'])}</div>" if a["why"] else ""
            cells += f"<td class='big'>{e(a['text'])}{why}</td>"
            if has_truth:
                cells += f"<td>{e('+'.join(r['truth'])) if r['truth'] else '?'}{mark}</td>"
            for g in generators:
                cell = (r["verdicts"].get(g) or {}).get("tests", {}).get(test)
                if cell is None:
                    cells += "<td></td>"
                    continue
                cls, text = CELL.get(cell["decision"], ("err", cell["decision"]))
                link = f"<a href='{e(cell['evidence'])}'>{text}</a>" if cell["evidence"] else e(text)
                cells += f"<td class='{cls}' title='{e(cell['reason'])}'>{link}</td>"
            body.append(f"<tr>{cells}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Fleet audit: {e(name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Fleet audit: {e(name)}</h1>",
        f"<p>{_inline_markdown(e(LEAD))}</p>",
        f"<p>Decided by the test <b>{e(by)}</b>. {len(rows)} suspects, {len(generators)} candidates, "
        f"{len(attribution['audits'])} audits; each cell links to that verdict in its audit's report.</p>",
        f"<p class='big'><b>{e(_counts_line(attribution['by_test'][by]))}</b></p>",
        matrix(by),
    ]
    for t in attribution["tests"]:
        if t != by:
            parts.append(
                f"<details><summary>The same by <b>{e(t)}</b>: "
                f"{e(_counts_line(attribution['by_test'][t]))}</summary>{matrix(t)}</details>"
            )
    benchmark = [t for t in attribution["tests"] if attribution["by_test"][t]["confusion"]]
    if benchmark:
        parts.append(f"<h2>Against the truth</h2><p>{e(EXPLAIN)}</p>")
        for t in benchmark:
            entry = attribution["by_test"][t]
            text = format_confusion(entry["confusion"]) + "\n\n" + format_rates(entry["rates"])
            parts.append(f"<h3>{e(t)}</h3><pre>{e(text)}</pre>")
    parts.append("<h2>Evidence</h2><ul>")
    for a in attribution["audits"]:
        who = f"{a['generator']} on {a['task']}" if a["task"] else a["generator"]
        problems = f" — {len(a['errors'])} errors" if a["errors"] else ""
        parts.append(
            f"<li>{e(who)}: <a href='{e(a['report'])}'>report.html</a>, "
            f"<a href='{e(a['report_json'])}'>report.json</a>, "
            f"<a href='{e(a['audit_file'])}'>audit.toml</a>{e(problems)}</li>"
        )
    parts.append(
        "</ul><p><a href='attribution.json'>attribution.json</a> · "
        "<a href='attribution.md'>attribution.md</a></p></body></html>"
    )
    return "".join(parts)


def write_attribution(attribution: Mapping[str, Any], out_dir: Path) -> None:
    """attribution.json, attribution.md and index.html under `out_dir`."""
    (out_dir / "attribution.json").write_text(json.dumps(attribution, indent=2, default=str), "utf-8")
    (out_dir / "attribution.md").write_text(render_markdown(attribution), "utf-8")
    (out_dir / "index.html").write_text(render_html(attribution), "utf-8")


# ---- TOML out -------------------------------------------------------------------------------------------


def toml_dumps(doc: Mapping[str, Any]) -> str:
    """TOML for plain documents (scalars, lists, tables, arrays of tables; None left out, as TOML has no
    null), so the audits and fleets trainprove writes can be re-run by hand."""

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, Mapping):  # a table inside a table: an inline table
            return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None) + " }"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    def body(table: Mapping[str, Any]) -> list[str]:
        return [f"{key(k)} = {value(v)}" for k, v in table.items() if v is not None]

    lines = body({k: v for k, v in doc.items() if not isinstance(v, Mapping) and not is_tables(v)})
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{key(k)}]", *body(v)]
        elif is_tables(v):
            for item in v:
                lines += ["", f"[[{key(k)}]]", *body(item)]
    return "\n".join(lines) + "\n"
