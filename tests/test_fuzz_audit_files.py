"""Hundreds of mutated audit files, made deterministically from the valid ones the repository holds (the
tests' helper audit, the README's example, the demo's audit, the http examples of docs/suspects.md), run
through `trainprove check` and `trainprove audit` in this process.

Each mutation is *invalid* (it breaks a type, a bound, a choice, a required key or table, the file's
encoding or syntax, or one of the faults issue 12 found) or *either* (a value no declaration rules out,
such as an empty free-form string). For every invalid file: exit code 2, a message naming the file and a
table and key (or, for a file that does not parse, its line), no traceback, and `trainprove audit`
refuses it identically with nothing written to the store or --out. An `either` file may be accepted, but
never with a traceback. The counts are printed (`pytest -s`)."""

from __future__ import annotations

import copy
import json
import math
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from core_test_helpers import base_audit

from trainprove_core.cli import cli
from trainprove_core.config import SEED, TABLES
from trainprove_core.listing import toml_value
from trainprove_core.records import Option

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
HTTP_JSON = {
    "name": "api",
    "use": "http",
    "protocol": "json",
    "url": "http://127.0.0.1:9/predict",
    "response_path": "predictions",
}


# ---- writing TOML (the core reads it; nothing here needs to parse) -------------------------------------


def to_toml(doc: dict[str, Any]) -> str:
    """`doc` as an audit file: top-level values, then tables, then arrays of tables."""

    def array_of_tables(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    def body(table: dict[str, Any]) -> list[str]:
        return [f"{k} = {toml_value(v)}" for k, v in table.items()]

    lines = body({k: v for k, v in doc.items() if not isinstance(v, dict) and not array_of_tables(v)})
    for key, value in doc.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]", *body(value)]
        elif array_of_tables(value):
            for item in value:
                lines += ["", f"[[{key}]]", *body(item)]
    return "\n".join(lines) + "\n"


# ---- the valid audit files -------------------------------------------------------------------------------


def _checkpoint(root: Path, classes: list[str], size: int) -> Path:
    """A random-weight timm checkpoint written as the timm trainer writes it (nothing is trained)."""
    import timm
    import torch
    from trainprove_timm.training import save_checkpoint

    from trainprove_core.task import Task

    path = root / f"ckpt-{len(classes)}-{size}"
    if not path.exists():
        torch.manual_seed(0)
        model = timm.create_model("test_resnet", pretrained=False, num_classes=len(classes))
        save_checkpoint(model.eval(), "test_resnet", Task(tuple(classes), size), path)
    return path


def _readme_audit(ckpt: Path) -> dict[str, Any]:
    """The README's audit, with what this offline machine lacks swapped: the generator (a hub model)
    for the core's `shapes`, the suspect's checkpoint for a random one of the same classes."""
    import tomllib

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(# audit\.toml.*?)```", text, re.S)
    assert block, "the README's audit example moved"
    doc = tomllib.loads(block.group(1))
    doc["generator"] = {"use": "shapes"}
    doc["suspect"][0].update(checkpoint=str(ckpt), arch="test_resnet")
    return doc


def _demo_audit(ckpt: Path) -> dict[str, Any]:
    from trainprove_demo.pool import Suspect, audit_document

    pool = [Suspect("ddpm-resnet-0", "digits-ddpm", ckpt), Suspect("real-resnet-0", "digits-real", ckpt)]
    return audit_document("digits-gmm", pool, hard=False)


def _doc_http_suspects() -> list[dict[str, Any]]:
    """The http adapter's examples in docs/suspects.md."""
    import tomllib

    text = (ROOT / "docs" / "suspects.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```toml\n(.*?)```", text, re.S):
        try:
            doc = tomllib.loads(block)
        except tomllib.TOMLDecodeError:
            continue
        # an example's label_names are its own task's (CIFAR-10); the base audit's task is another
        out += [
            {k: v for k, v in s.items() if k != "label_names"}
            for s in doc.get("suspect", [])
            if s.get("use") == "http"
        ]
    return out


def valid_audits(root: Path) -> dict[str, dict[str, Any]]:
    shapes = _checkpoint(root, ["disc", "ring", "hbar"], 16)
    helper = base_audit(
        suspect=[{"name": "s", "use": "timm", "checkpoint": str(shapes)}, dict(HTTP_JSON)],
        test=[
            {"use": "trainprove"},
            {"use": "trainprove", "name": "paper", "paper_compat": True},
            {"use": "welch"},
            {"use": "accuracy-threshold", "threshold": 0.5},
            {"use": "random-guess"},
        ],
        negative_control={"use": "shapes", "style": 1.0},
        positive_control={"trainer": "timm", "arch": "test_efficientnet", "epochs": 6},
        seed=3,
    )
    http = base_audit(suspect=_doc_http_suspects(), executor={"use": "local"})
    readme = _readme_audit(_checkpoint(root, _readme_classes(), 32))
    demo = _demo_audit(_checkpoint(root, DIGITS, 8))
    return {"helper": helper, "docs-http": http, "readme": readme, "demo": demo}


def _readme_classes() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return json.loads(re.search(r"^classes = (\[.*\])$", text, re.M).group(1))


# ---- mutations --------------------------------------------------------------------------------------------


@dataclass
class Mutation:
    name: str
    text: str | bytes
    invalid: bool
    names: tuple[str, ...] = ()
    """What the message must say besides the file: the table and the key (empty: any table and key)."""


def _options(plugins, table: str, raw: dict[str, Any]) -> dict[str, Option]:
    """Every key the table accepts: the core's, and those of the plugin it selects."""
    spec = next(t for t in TABLES if t.name == table)
    options = {o.name: o for o in spec.core}
    use = raw.get(spec.use_key, _default_use(spec)) if spec.kind is not None else None
    if isinstance(use, str):
        for option in plugins.get(spec.kind.name, use).spec.options:
            options.setdefault(option.name, option)
    return options


def _default_use(spec) -> str | None:
    option = next(o for o in spec.core if o.name == spec.use_key)
    return None if option.required else option.default


def _where(table: str, index: int | None, raw: dict[str, Any]) -> str:
    if index is None:
        return f"[{table}]"
    if table == "suspect" and isinstance(raw.get("name"), str) and raw["name"].strip():
        return f"[suspect {raw['name']}]"
    return f"[{table} {index + 1}]"


def _outside(value: float, option: Option) -> bool:
    """Whether a number breaks the option's declared bounds (an int without `min`: at least 0)."""
    if isinstance(value, float) and not math.isfinite(value):
        return True
    low = option.min if option.min is not None else (0 if option.type == "int" else None)
    if low is not None and (value < low or (option.exclusive_min and value <= low)):
        return True
    return option.max is not None and value > option.max


WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "str": (5, ["a"]),
    "path": (True,),
    "path-or-id": (5,),
    "int": ("7", 1.5),
    "float": ("0.5", True),
    "bool": ("true", 1),
    "list[str]": ("a", [1, 2]),
    "list[float]": ("a", ["a"]),
    "table": (1, [1]),
}
NUMBERS = {"int": (-1, 0, 10**18), "float": (-1.0, 0.0, math.nan, math.inf)}
MUST_SAY_SOMETHING = {"name", "use", "trainer", "url", "device", "arch"}
SET_TABLES = {"shadow", "validation", "negative_control", "positive_control"}


def _mutated(doc, table, index, key, value=None, *, drop=False, rename=None) -> tuple[dict[str, Any], str]:
    """A copy of `doc` with one key of one table changed, dropped or renamed; and where the loader will
    say the problem is."""
    changed = copy.deepcopy(doc)
    entry = changed[table][index] if index is not None else changed[table]
    if drop or rename:
        moved = entry.pop(key)
        if rename:
            entry[rename] = moved
    else:
        entry[key] = value
    return changed, _where(table, index, entry)


def key_mutations(plugins, base: str, doc: dict[str, Any], seen: set[tuple[str, ...]]) -> list[Mutation]:
    """Every key of every table of `doc` given a wrong type, numbers out of bounds, NaN and infinity,
    a wrong choice, an empty string; renamed (an unknown key) and removed. A change already made to the
    same key of the same plugin in an earlier base (`seen`) is not made again."""
    out = []

    def emit(label: str, changed: dict[str, Any], invalid: bool, names: tuple[str, ...]) -> None:
        done = (table, str(raw.get("use", raw.get("trainer"))), label)
        if done not in seen:
            seen.add(done)
            out.append(Mutation(f"{base}: {label}", to_toml(changed), invalid, names))

    table, raw = "", {}
    for value in WRONG_TYPES["int"] + NUMBERS["int"] + (2**40,):
        invalid = not isinstance(value, int) or isinstance(value, bool) or _outside(value, SEED)
        emit(f"seed = {value!r}", {**copy.deepcopy(doc), "seed": value}, invalid, ("top-level key 'seed'",))
    for table in [t.name for t in TABLES if t.name in doc]:
        entries = doc[table] if isinstance(doc[table], list) else [doc[table]]
        for i, raw in enumerate(entries):
            index = i if isinstance(doc[table], list) else None
            options = _options(plugins, table, raw)

            for key in raw:
                changed, where = _mutated(doc, table, index, key, rename=f"{key}_x")
                emit(f"[{table}] {key} renamed", changed, True, (where, f"'{key}_x'"))
            for key, option in options.items():
                if key in raw:
                    changed, where = _mutated(doc, table, index, key, drop=True)
                    # Without a key it does not need, another key may no longer fit: any key may be named.
                    names = (where, f"'{key}'") if option.required else ()
                    emit(f"[{table}] {key} removed", changed, option.required, names)
                for value in WRONG_TYPES[option.type]:
                    changed, where = _mutated(doc, table, index, key, value)
                    emit(f"[{table}] {key} = {value!r}", changed, True, (where, f"'{key}'"))
                for value in NUMBERS.get(option.type, ()):
                    changed, where = _mutated(doc, table, index, key, value)
                    invalid = _outside(value, option)
                    # A set of 10**18 images fits no machine: refused, naming the largest set's per_class.
                    huge = key == "per_class" and value == 10**18 and table in SET_TABLES
                    emit(
                        f"[{table}] {key} = {value!r}",
                        changed,
                        invalid or huge,
                        () if huge else (where, f"'{key}'"),
                    )
                if option.choices is not None:
                    changed, where = _mutated(doc, table, index, key, "not-a-choice")
                    emit(f"[{table}] {key} not a choice", changed, True, (where, f"'{key}'"))
                if option.type in ("str", "path", "path-or-id"):
                    changed, where = _mutated(doc, table, index, key, "")
                    emit(f"[{table}] {key} = ''", changed, key in MUST_SAY_SOMETHING, (where, f"'{key}'"))
                if option.type == "list[float]":
                    changed, where = _mutated(doc, table, index, key, [math.nan, 0.5, 0.5])
                    emit(f"[{table}] {key} holds nan", changed, True, (where, f"'{key}'"))
    return out


def table_mutations(base: str, doc: dict[str, Any]) -> list[Mutation]:
    out = []

    def emit(label: str, changed: dict[str, Any], names: tuple[str, ...] = ()) -> None:
        out.append(Mutation(f"{base}: {label}", to_toml(changed), True, names))

    for spec in TABLES:
        if spec.required:
            emit(f"no [{spec.name}]", {k: v for k, v in doc.items() if k != spec.name}, (spec.name,))
        if spec.name in doc:
            emit(f"{spec.name} = 5", {**copy.deepcopy(doc), spec.name: 5}, (f"[{spec.name}]",))
            if spec.many:
                emit(f"{spec.name} = []", {**copy.deepcopy(doc), spec.name: []}, (f"[{spec.name}]",))
                twice = copy.deepcopy(doc)
                twice[spec.name] = [*twice[spec.name], copy.deepcopy(twice[spec.name][0])]
                emit(f"[[{spec.name}]] twice", twice, ("used twice",))
            else:
                emit(
                    f"[[{spec.name}]]",
                    {**copy.deepcopy(doc), spec.name: [doc[spec.name]]},
                    (f"[{spec.name}]",),
                )
    emit("unknown top-level key", {**copy.deepcopy(doc), "seeds": 1}, ("'seeds'",))
    emit("unknown table", {**copy.deepcopy(doc), "shadows": {"per_class": 1}}, ("'shadows'",))
    return out


def text_mutations(base: str, doc: dict[str, Any]) -> list[Mutation]:
    text = to_toml(doc)
    prompt = doc["shadow"]["prompt"]
    accented = text.replace(json.dumps(prompt), f'"é {prompt}"', 1)
    cases: list[tuple[str, str | bytes, tuple[str, ...]]] = [
        ("UTF-8 BOM", "\ufeff" + text, ("byte-order mark",)),
        ("Latin-1", accented.encode("latin-1"), ("not UTF-8", "line")),
        ("UTF-16", text.encode("utf-16"), ("byte-order mark",)),
        ("[task] twice", text + "\n[task]\nimage_size = 8\n", ("not valid TOML", "line")),
        ("a key twice", "seed = 1\nseed = 2\n" + text.split("\n", 1)[1], ("not valid TOML", "line")),
        ("garbage line", text + "\nthis is not toml\n", ("not valid TOML", "line")),
        ("unclosed string", text.replace(json.dumps(prompt), '"' + prompt, 1), ("not valid TOML",)),
        ("empty file", "", ("missing [task]",)),
    ]
    return [Mutation(f"{base}: {label}", data, True, names) for label, data, names in cases]


def issue_mutations(doc: dict[str, Any]) -> list[Mutation]:
    """What issue 12's fuzzing found accepted, or refused only after work started (the helper audit)."""
    out = []

    def case(label: str, change, names: tuple[str, ...]) -> None:
        changed = copy.deepcopy(doc)
        change(changed)
        out.append(Mutation(f"issue: {label}", to_toml(changed), True, names))

    case("seed = -1", lambda d: d.update(seed=-1), ("top-level key 'seed'",))
    case("image_size = 100000", lambda d: d["task"].update(image_size=100000), ("[task]", "'image_size'"))
    case("test = 5", lambda d: d.update(test=5), ("[test]",))
    case("test = []", lambda d: d.update(test=[]), ("[test]",))
    for key, value in (("lr", -1.0), ("lr", math.nan), ("epochs", 0), ("epochs", 10**9), ("batch_size", 0)):
        case(
            f"[shadow] {key} = {value}",
            lambda d, k=key, v=value: d["shadow"].update({k: v}),
            ("[shadow]", f"'{key}'"),
        )
    for value in ("cuda:7", "tpu", "cuda:x"):
        case(f"device = {value}", lambda d, v=value: d["shadow"].update(device=v), ("[shadow]", "'device'"))
    case("arch = nope_net", lambda d: d["shadow"].update(arch="nope_net"), ("[shadow]", "'arch'"))
    for scale in ([0.9, 0.1], [0.5], [0.0, 1.0], [0.5, 1.5]):
        case(
            f"crop_scale = {scale}",
            lambda d, s=scale: d["shadow"].update(crop_scale=s),
            ("[shadow]", "'crop_scale'"),
        )
    for key, value in (("std", [0.0, 0.0, 0.0]), ("mean", [0.5, 0.5]), ("std", [0.5, -0.5, 0.5])):
        case(
            f"timm {key} = {value}",
            lambda d, k=key, v=value: d["suspect"][0].update({k: v}),
            ("[suspect s]", f"'{key}'"),
        )
    case(
        "label space",
        lambda d: d["suspect"][0].update(label_names=["disc", "ring", "square"]),
        ("[suspect s]", "'label_names'"),
    )
    for key, value in (
        ("url", "not a url"),
        ("url", ""),
        ("url", "ftp://x/y"),
        ("url", "http://"),
        ("budget", 0),
        ("timeout", -1.0),
        ("timeout", 0.0),
        ("std", [0.0, 1.0, 1.0]),
    ):
        case(
            f"http {key} = {value!r}",
            lambda d, k=key, v=value: d["suspect"][1].update({k: v}),
            ("[suspect api]", f"'{key}'"),
        )
    case(
        "[validation] batch_size >= N",
        lambda d: d["validation"].update(batch_size=300),
        ("[validation]", "'batch_size'"),
    )
    case("empty suspect name", lambda d: d["suspect"][0].update(name=""), ("[suspect 1]", "'name'"))
    case("blank test name", lambda d: d["test"][0].update(name="  "), ("[test 1]", "'name'"))
    case(
        "suspect named shadow",
        lambda d: d["suspect"][0].update(name="shadow"),
        ("[suspect shadow]", "'name'"),
    )
    case(
        "[shadow] per_class = 10**9",
        lambda d: d["shadow"].update(per_class=10**9),
        ("[shadow]", "'per_class'"),
    )
    case("[shadow] per_class = 0", lambda d: d["shadow"].update(per_class=0), ("[shadow]", "'per_class'"))
    case("[test] alpha = 2", lambda d: d["test"][0].update(alpha=2.0), ("[test 1]", "'alpha'"))
    case(
        "[test] min_answered = -3",
        lambda d: d["test"][0].update(min_answered=-3.0),
        ("[test 1]", "'min_answered'"),
    )
    case("train_seed = -1", lambda d: d["shadow"].update(train_seed=-1), ("[shadow]", "'train_seed'"))
    case("one class", lambda d: d["task"].update(classes=["disc"]), ("[task]", "'classes'"))
    return out


# ---- running them ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    output: str
    traceback: str


def invoke(plugins, args: list[str]) -> Outcome:
    result = CliRunner().invoke(cli, args, obj={"plugins": plugins}, catch_exceptions=True)
    tb = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(result.exception))
    return Outcome(result.exit_code, result.output, tb)


def test_hundreds_of_mutated_audit_files_are_refused_up_front(plugins, tmp_path, monkeypatch):
    bases = valid_audits(tmp_path)
    for doc in bases.values():  # the docs' examples read their tokens from the environment
        for suspect in doc["suspect"]:
            if suspect.get("token_env"):
                monkeypatch.setenv(suspect["token_env"], "tok-fuzz")
    store, out = tmp_path / "store", tmp_path / "out"
    for name, doc in bases.items():  # every base is valid: the mutations start from files that work
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(doc), encoding="utf-8")
        outcome = invoke(plugins, ["check", str(path), "--store", str(store)])
        assert outcome.code == 0 and not outcome.traceback, (name, outcome.output, outcome.traceback)
    mutations = issue_mutations(bases["helper"])
    seen: set[tuple[str, ...]] = set()
    for name, doc in bases.items():
        mutations += key_mutations(plugins, name, doc, seen)
        mutations += table_mutations(name, doc) + text_mutations(name, doc)

    counts = {
        "tried": 0,
        "invalid": 0,
        "refused up front, file and key named": 0,
        "tracebacks": 0,
        "accepted": 0,
        "invalid but accepted": 0,
    }
    problems = []
    for i, m in enumerate(mutations):
        path = tmp_path / f"m{i:04d}.toml"
        path.write_bytes(m.text if isinstance(m.text, bytes) else m.text.encode("utf-8"))
        counts["tried"] += 1
        counts["invalid"] += m.invalid
        checked = invoke(plugins, ["check", str(path), "--store", str(store)])
        if checked.traceback:
            counts["tracebacks"] += 1
            problems.append(f"{m.name}: traceback\n{checked.traceback}")
            continue
        if checked.code == 0:
            counts["accepted"] += 1
            counts["invalid but accepted"] += m.invalid
            if m.invalid:
                problems.append(f"{m.name}: accepted")
            continue
        message = checked.output
        named = checked.code == 2 and str(path) in message and all(n in message for n in m.names)
        named = named and (bool(m.names) or re.search(r"\[[^\]]+\] (key|unknown key|missing)", message))
        if not named:
            problems.append(f"{m.name}: exit {checked.code}, the message does not name {m.names}: {message}")
            continue
        audited = invoke(
            plugins, ["audit", str(path), "--store", str(store), "--out", str(out), "--no-progress"]
        )
        if audited.code != 2 or audited.output != checked.output or audited.traceback:
            problems.append(f"{m.name}: audit differs from check: {audited.output}{audited.traceback}")
            continue
        if store.exists() or out.exists():
            problems.append(f"{m.name}: work started (store or --out written)")
            continue
        counts["refused up front, file and key named"] += 1
    print("\naudit-file fuzz:", json.dumps(counts))
    assert not problems, f"{len(problems)} of {len(mutations)} mutations misbehave:\n" + "\n".join(
        problems[:40]
    )
    assert counts["tried"] >= 500 and counts["tracebacks"] == 0


# ---- the fleet file ---------------------------------------------------------------------------------------


def _pixel_suspect(plugins, root: Path) -> str:
    """A pixel-logistic suspect (trained in a second), so a fleet that is accepted runs in seconds."""
    from trainprove_core.audit import Workspace
    from trainprove_core.config import ImageSetConfig
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    ws = Workspace.open(Task(("disc", "ring", "hbar"), 16), plugins, Store(root / "pool"), False)
    generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": 1.0}))
    images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 8, seed=11))
    return str(ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0])


def fleet_base(model_dir: str) -> dict[str, Any]:
    return {
        "seed": 3,
        "fleet": {"known_sources": ["real"], "attribute_by": "trainprove"},
        "task": [
            {"name": "three", "classes": ["disc", "ring", "hbar"], "image_size": 16},
            {
                "name": "again",
                "classes": ["disc", "ring", "hbar"],
                "image_size": 16,
                "validation": {"per_class": 4},
            },
        ],
        "generator": [
            {"name": "plain", "use": "shapes", "style": 0.0},
            {"name": "striped", "use": "shapes", "style": 1.0, "tasks": ["three"]},
        ],
        "shadow": {"prompt": "a {label}", "per_class": 6, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 6, "batch_size": 3},
        "suspect": [
            {
                "name": "a",
                "task": "three",
                "use": "pixel-logistic",
                "model_dir": model_dir,
                "truth": "striped",
            },
            {"name": "b", "task": "again", "use": "pixel-logistic", "model_dir": model_dir, "truth": "real"},
        ],
        "test": [{"use": "trainprove"}],
    }


def fleet_mutations(doc: dict[str, Any]) -> list[Mutation]:
    """The fleet's own keys broken every way (types, unknown names, duplicates, empty), its tables
    missing or of the wrong shape, the file's encoding broken; each must be refused before any work."""
    out = []

    def case(label: str, change, names: tuple[str, ...] = ()) -> None:
        changed = copy.deepcopy(doc)
        change(changed)
        out.append(Mutation(f"fleet: {label}", to_toml(changed), True, names))

    for value in (5, "nope", ["trainprove"]):
        case(f"attribute_by = {value!r}", lambda d, v=value: d["fleet"].update(attribute_by=v), ("fleet",))
    for value in ("real", [1], ["plain"], ["none"]):
        case(f"known_sources = {value!r}", lambda d, v=value: d["fleet"].update(known_sources=v))
    case("fleet = 5", lambda d: d.update(fleet=5), ("[fleet]",))
    case("fleet unknown key", lambda d: d["fleet"].update(attribute=1), ("[fleet]", "'attribute'"))
    case("no [[task]]", lambda d: d.pop("task"), ("task",))
    case("task = 5", lambda d: d.update(task=5), ("task",))
    case("tasks unnamed", lambda d: d["task"][0].pop("name"), ("'name'",))
    case("task name twice", lambda d: d["task"][1].update(name="three"), ("used twice",))
    for value in ("", "a b", 5, "../x"):
        case(f"task name = {value!r}", lambda d, v=value: d["task"][0].update(name=v), ("task",))
    case("task validation = 5", lambda d: d["task"][1].update(validation=5), ("'validation'",))
    case("task classes = []", lambda d: d["task"][0].update(classes=[]), ("'classes'",))
    case("no [[generator]]", lambda d: d.pop("generator"), ("generator",))
    case("generator = []", lambda d: d.update(generator=[]), ("generator",))
    case("generator name twice", lambda d: d["generator"][1].update(name="plain"), ("used twice",))
    case("generator named none", lambda d: d["generator"][0].update(name="none"), ("'none'",))
    case("generator named a known source", lambda d: d["generator"][0].update(name="real"), ("known source",))
    case("generator without use", lambda d: d["generator"][0].pop("use"), ("'use'",))
    case("unknown generator", lambda d: d["generator"][0].update(use="no-such-gen"), ("unknown generator",))
    case("unnamed unknown generator as truth", lambda d: (
        d["generator"][0].update(use="no-such-gen"), d["generator"][0].pop("name"),
        d["suspect"][1].update(truth="plain")), ("unknown generator 'no-such-gen'",))  # fmt: skip
    case("generator tasks names none", lambda d: d["generator"][1].update(tasks=["four"]), ("'tasks'",))
    case("generator tasks = 'three'", lambda d: d["generator"][1].update(tasks="three"), ("'tasks'",))
    case("generator style = nan", lambda d: d["generator"][0].update(style=math.nan), ("'style'",))
    case("suspect without name", lambda d: d["suspect"][0].pop("name"), ("'name'",))
    case("suspect name twice", lambda d: d["suspect"][1].update(name="a"), ("used twice",))
    case("suspect task unknown", lambda d: d["suspect"][0].update(task="four"), ("'task'",))
    case("suspect without task", lambda d: d["suspect"][0].pop("task"), ("'task'",))
    for value in ("nope", 5, [], ["none", "plain"], ["striped", 5]):
        case(f"truth = {value!r}", lambda d, v=value: d["suspect"][0].update(truth=v), ("'truth'",))
    case("a task without suspects", lambda d: d["suspect"].pop(1), ("no [[suspect]]",))
    case("[shadow] per_class = 0", lambda d: d["shadow"].update(per_class=0), ("'per_class'",))
    case(
        "[validation] prompt attribute",
        lambda d: d["validation"].update(prompt="{label.upper}"),
        ("'prompt'",),
    )
    case(
        "test named nowhere", lambda d: d["test"][0].update(use="no-such-test", name="trainprove"), ("'use'",)
    )
    case("executor unknown", lambda d: d.update(executor={"use": "nope"}), ("executor",))
    text = to_toml(doc)
    for label, data, names in (
        ("binary", bytes(range(256)) * 8, ("not UTF-8",)),
        ("UTF-8 BOM", ("\ufeff" + text).encode(), ("byte-order mark",)),
        ("UTF-16", text.encode("utf-16"), ("byte-order mark",)),
        ("Latin-1", text.replace("a photo", "é photo").encode("latin-1"), ("not UTF-8",)),
        ("garbage", (text + "\nnot toml\n").encode(), ("not valid TOML",)),
        ("empty", b"", ()),
    ):
        out.append(Mutation(f"fleet: {label}", data, True, names))
    return out


def test_mutated_fleet_files_are_refused_up_front(plugins, tmp_path):
    from trainprove_core.fleet import load_fleet

    base = fleet_base(_pixel_suspect(plugins, tmp_path))
    good = tmp_path / "fleet.toml"
    good.write_text(to_toml(base), encoding="utf-8")
    assert len(load_fleet(good, plugins).audits) == 3  # the base is valid
    counts = {"tried": 0, "refused up front, named": 0, "tracebacks": 0, "accepted": 0}
    problems = []
    for i, m in enumerate(fleet_mutations(base)):
        store, out = tmp_path / f"store{i}", tmp_path / f"out{i}"
        path = tmp_path / f"f{i:03d}.toml"
        path.write_bytes(m.text if isinstance(m.text, bytes) else m.text.encode("utf-8"))
        counts["tried"] += 1
        ran = invoke(plugins, ["fleet", str(path), "--store", str(store), "--out", str(out), "--no-progress"])
        if ran.traceback:
            counts["tracebacks"] += 1
            problems.append(f"{m.name}: traceback\n{ran.traceback}")
        elif ran.code == 0:
            counts["accepted"] += 1
            problems.append(f"{m.name}: accepted")
        elif ran.code != 2 or str(path) not in ran.output or not all(n in ran.output for n in m.names):
            problems.append(f"{m.name}: exit {ran.code}, the message does not name {m.names}: {ran.output}")
        elif store.exists() or out.exists():
            problems.append(f"{m.name}: work started (store or --out written)")
        else:
            counts["refused up front, named"] += 1
    print("\nfleet-file fuzz:", json.dumps(counts))
    assert not problems, f"{len(problems)} fleet mutations misbehave:\n" + "\n".join(problems[:30])
    assert counts["tried"] >= 50 and counts["tracebacks"] == 0


# ---- every command's options, given what a user may type -------------------------------------------------


def _bad_paths(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    afile = root / "afile.txt"
    afile.write_text("x")
    binary = root / "binary.toml"
    binary.write_bytes(bytes(range(256)) * 8)
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    damaged = root / "damaged-run"
    damaged.mkdir()
    (damaged / "report.json").write_text('{"verdicts": [')
    return {
        "missing": str(root / "no-such"),
        "empty": "",
        "a file": str(afile),
        "through a file": str(afile / "x"),
        "file/../x": f"{afile}/../x",
        "symlink loop": str(root / "loop1"),
        "binary": str(binary),
        "a folder": str(root),
        "too long": str(root / ("x" * 300)),
        "damaged report": str(damaged),
        "/proc": "/proc/1/x",
    }


BAD_NUMBERS = ("nan", "inf", "-inf", "-1", "0", "1e999", "abc", "")


def test_every_command_and_option_given_bad_values_answers_without_a_traceback(
    plugins, tmp_path, monkeypatch
):
    """A table of commands x their options x bad values (paths: missing, a file, through a file, a loop,
    binary, too long; numbers: nan, inf, negative, zero, huge, not a number; choices: an unknown one).
    Each must answer with an exit code and a message, never a traceback, and lose nothing: the store's
    entries are all still there afterwards."""
    import click

    monkeypatch.chdir(tmp_path)
    plugins.add_commands(cli) if "plan" not in cli.commands else None
    model_dir = _pixel_suspect(plugins, tmp_path)
    audit = tmp_path / "audit.toml"
    doc = fleet_base(model_dir)
    audit_doc = {k: v for k, v in doc.items() if k not in ("fleet", "task", "generator", "suspect")}
    task = {k: v for k, v in doc["task"][0].items() if k != "name"}
    generator = {k: v for k, v in doc["generator"][0].items() if k != "name"}
    suspect = {k: v for k, v in doc["suspect"][0].items() if k not in ("task", "truth")}
    audit_doc.update(task=task, generator=generator, suspect=[suspect])
    audit.write_text(to_toml(audit_doc), encoding="utf-8")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(to_toml(doc), encoding="utf-8")
    store = tmp_path / "store"
    assert invoke(plugins, ["generate", str(audit), "--store", str(store), "--no-progress"]).code == 0
    entries = sorted(p for p in store.rglob("*") if p.is_file() and "locks" not in p.parts)
    paths = _bad_paths(tmp_path / "bad")

    base_args = {  # a valid invocation of each command, that the bad value is swapped into
        ("audit",): [str(audit)],
        ("check",): [str(audit)],
        ("generate",): [str(audit)],
        ("sample",): ["shapes", "--classes", "a,b", "--per-class", "1", "--out", str(tmp_path / "s")],
        ("report",): [str(tmp_path / "bad" / "damaged-run")],
        ("fleet",): [str(fleet)],
        ("plan",): [str(audit)],
        ("plugins",): [],
        ("schema",): [],
        ("store", "verify"): [],
        ("store", "gc"): [],
    }
    counts = {"tried": 0, "refused (exit 2)": 0, "other exit": 0, "tracebacks": 0}
    problems = []
    for command, args in base_args.items():
        target = cli
        for word in command:
            target = target.commands[word]
        for param in target.params:
            if param.name in ("help", "progress") or getattr(param, "is_flag", False):
                continue
            kind = param.type
            if isinstance(kind, click.Path):
                values = paths
            elif kind.name in ("integer", "float", "number", "integer range", "float range"):
                values = {v: v for v in BAD_NUMBERS}
            elif isinstance(kind, click.Choice):
                values = {"unknown choice": "nope"}
            else:
                values = {"empty": "", "unknown": "no-such-thing"}
            for label, value in values.items():
                argv = list(command)
                if isinstance(param, click.Argument):  # each command's one argument comes first
                    argv += [value, *args[1:]]
                else:  # the bad value replaces the same option's valid one
                    flag = param.opts[0]
                    kept = [a for i, a in enumerate(args) if a != flag and (i == 0 or args[i - 1] != flag)]
                    argv += [*kept, flag, value]
                if param.name != "store_dir" and "store_dir" in [p.name for p in target.params]:
                    argv += ["--store", str(store)]
                if "progress" in [p.name for p in target.params]:
                    argv.append("--no-progress")
                counts["tried"] += 1
                ran = invoke(plugins, argv)
                if ran.traceback:
                    counts["tracebacks"] += 1
                    problems.append(f"{' '.join(argv)} ({label}): traceback\n{ran.traceback}")
                elif ran.code == 2:
                    counts["refused (exit 2)"] += 1
                else:
                    counts["other exit"] += 1
    print("\nCLI option fuzz:", json.dumps(counts))
    lost = [p for p in entries if not p.exists()]
    assert not problems, f"{len(problems)} of {counts['tried']} misbehave:\n" + "\n".join(
        p.split("\n")[0] + " | " + p.strip().split("\n")[-1] for p in problems
    )
    assert not lost, lost
    assert counts["tried"] >= 150
