"""`trainprove fleet`: several candidate generators, two tasks, suspects of known source; the attribution
report, a resumed run that does no work, a folder of audit files, and bad fleet files refused up front.

The candidates are the core's test kit sources (`shapes` without and with its house style: two
candidates of one plugin), the shadow and the suspects `pixel-logistic` models, so a whole fleet takes
seconds; the suspects trained on `glyphs` strokes come from a source that is no candidate.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trainprove_core.audit import Workspace
from trainprove_core.cli import cli
from trainprove_core.config import ImageSetConfig, load_config, tomllib
from trainprove_core.errors import ConfigError
from trainprove_core.fleet import (
    FleetSuspect,
    attribute_one,
    expand,
    fleet_from_dict,
    load_fleet,
    run_fleet,
    toml_dumps,
)
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
from trainprove_core.task import Task

THREE = ["disc", "ring", "hbar"]
FIVE = ["disc", "ring", "hbar", "vbar", "square"]
SOURCES = {"plain": ("shapes", 0.0), "striped": ("shapes", 1.0), "strokes": ("glyphs", 0.0)}
# (suspect, task, source it is trained on): strokes only for the three-class task (glyphs has 4 strokes)
SUSPECTS = (
    ("three-plain", "three", "plain"),
    ("three-striped", "three", "striped"),
    ("three-strokes", "three", "strokes"),
    ("five-plain", "five", "plain"),
    ("five-striped", "five", "striped"),
)


@pytest.fixture(scope="module")
def plugins():
    plugin_set = load_plugins(strict=True)
    plugin_set.register(GlyphPlugin(), "glyphs", "tests")
    return plugin_set


def fleet_document(models: dict[str, str], log: str) -> dict:
    return {
        "seed": 3,
        "fleet": {"known_sources": ["strokes"]},
        "task": [
            {"name": "three", "classes": THREE, "image_size": 16},
            {"name": "five", "classes": FIVE, "image_size": 12, "validation": {"per_class": 60}},
        ],
        "generator": [
            {"name": "plain", "use": "shapes", "style": 0.0, "log": log},
            {"name": "striped", "use": "shapes", "style": 1.0, "log": log},
        ],
        "shadow": {"prompt": "a {label}", "per_class": 60, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 80, "batch_size": 16},
        "suspect": [
            {"name": name, "task": task, "use": "pixel-logistic", "model_dir": models[name], "truth": source}
            for name, task, source in SUSPECTS
        ],
        "test": [{"use": "trainprove"}, {"use": "accuracy-threshold"}],
    }


@pytest.fixture(scope="module")
def setting(tmp_path_factory, plugins):
    """The suspects (trained into the fleet's store) and the fleet file that audits them."""
    root = tmp_path_factory.mktemp("fleet")
    store = Store(root / "store")
    models = {}
    for name, task, source in SUSPECTS:
        classes = THREE if task == "three" else FIVE
        ws = Workspace.open(Task(tuple(classes), 16 if task == "three" else 12), plugins, store, False)
        use, style = SOURCES[source]
        generator = ws.generator(ws.plugin_table("generator", use, {"style": style}))
        images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 60, seed=11))
        models[name] = str(
            ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0]
        )
    log = root / "generated.log"
    path = root / "fleet.toml"
    path.write_text(toml_dumps(fleet_document(models, str(log))), encoding="utf-8")
    return {"root": root, "store": store, "file": path, "log": log, "models": models}


def run_cli(plugins, *args: str):
    return CliRunner().invoke(cli, list(args), obj={"plugins": plugins}, catch_exceptions=False)


def test_fleet_attributes_every_suspect_links_the_evidence_and_resumes(setting, plugins):
    out = setting["root"] / "out"
    first = run_cli(plugins, "fleet", str(setting["file"]), "--out", str(out), "--store",
                    str(setting["store"].root), "--no-progress")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "4 audits" in first.output and "attribution by trainprove:" in first.output
    data = json.loads((out / "attribution.json").read_text())
    assert data["attribute_by"] == "trainprove" and data["tasks"] == ["three", "five"]
    assert data["generators"] == ["plain", "striped"]
    texts = {r["suspect"]: r["text"] for r in data["suspects"]}
    assert texts == {
        "three-plain": "from plain",
        "three-striped": "from striped",
        "three-strokes": "none of the candidates",
        "five-plain": "from plain",
        "five-striped": "from striped",
    }
    assert all(r["correct"] is True for r in data["suspects"])
    entry = data["by_test"]["trainprove"]
    assert entry["counts"] == {"from": 4, "several": 0, "none": 1, "undecided": 0}
    assert (entry["right"], entry["wrong"], entry["with_truth"]) == (5, 0, 5)
    # The benchmark table: rows the true sources, columns the candidates, cell [accused, n, inconclusive].
    assert entry["confusion"]["plain"]["plain"] == [2, 2, 0]
    assert entry["confusion"]["strokes"] == {"plain": [0, 1, 0], "striped": [0, 1, 0]}
    # Every verdict links to its record in the audit's report: the k-th verdict is `#vk` there.
    for row in data["suspects"]:
        for generator, judged in row["verdicts"].items():
            for test, cell in judged["tests"].items():
                page, anchor = cell["evidence"].split("#v")
                assert (out / page).exists() and page == f"{row['task']}/{generator}/report.html"
                verdict = json.loads((out / page).with_name("report.json").read_text())["verdicts"][
                    int(anchor)
                ]
                assert (verdict["suspect"], verdict["test"], verdict["decision"]) == (
                    row["suspect"],
                    test,
                    cell["decision"],
                )
    # Each audit is an ordinary audit file the user can re-run; the fleet's truths became the audit's.
    config = load_config(out / "five" / "striped" / "audit.toml", plugins)
    assert [(s.name, s.truth) for s in config.suspects] == [
        ("five-plain", "not-trained-on-generator"),
        ("five-striped", "trained-on-generator"),
    ]
    assert config.validation.per_class == 60 and config.task.image_size == 12  # the task's own [validation]
    summary = (out / "attribution.md").read_text()
    assert summary.startswith("# Fleet audit: fleet.toml\n\nWhich candidate generator's images")
    assert "| three-strokes | three | none of the candidates | strokes ✓ |" in summary
    assert (
        "| three-plain | [trained](three/plain/report.html#v0) "
        "| [not trained](three/striped/report.html#v0) |" in summary
    )
    page = (out / "index.html").read_text()
    assert "<script" not in page and not re.search(r"(src|href)=['\"]https?:", page)
    assert "href='five/striped/report.html#v" in page and "from striped" in page
    # The reports' words (trained / not trained / inconclusive), and the benchmark as tables, never cut off.
    assert ">trained</a>" in page and ">not trained</a>" in page and "accused<" not in page
    assert "Against the truth" in page and "<table class='conf'>" in page and "<pre>" not in page
    assert "false-accusation rate</th>" in page

    # Warm: nothing generated, trained or queried again; the same attribution.
    log_size = setting["log"].stat().st_size
    models = sorted(p.name for p in (setting["store"].root / "models").iterdir())
    second = run_cli(plugins, "fleet", str(setting["file"]), "--out", str(out), "--store",
                     str(setting["store"].root), "--no-progress")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert setting["log"].stat().st_size == log_size
    assert sorted(p.name for p in (setting["store"].root / "models").iterdir()) == models
    for report in out.glob("*/*/report.json"):
        assert all(s["queries_sent"] == 0 for s in json.loads(report.read_text())["suspects"])
    again = json.loads((out / "attribution.json").read_text())
    assert [r["text"] for r in again["suspects"]] == [r["text"] for r in data["suspects"]]

    # A folder of ordinary audit files is a fleet too: the three-class task's audits, one per candidate.
    folder = setting["root"] / "folder"
    folder.mkdir()
    for generator in ("plain", "striped"):
        shutil.copy(out / "three" / generator / "audit.toml", folder / f"{generator}.toml")
    by_folder = load_fleet(folder, plugins)
    assert by_folder.generators == ["plain", "striped"] and by_folder.tasks == [""]
    result = run_fleet(by_folder, plugins, setting["root"] / "by-folder", setting["store"], False)
    assert setting["log"].stat().st_size == log_size  # the same audits: all from the store
    assert {r["suspect"]: (r["text"], r["truth"]) for r in result.attribution["suspects"]} == {
        "three-plain": ("from plain", ["plain"]),
        "three-striped": ("from striped", ["striped"]),
        "three-strokes": ("none of the candidates", ["none"]),
    }


def test_an_attribution_says_from_several_or_undecided_and_why():
    suspect = FleetSuspect("s", "", ("a", "b", "c"), ("a", "b"))

    def said(**decisions: str) -> dict:
        return attribute_one(
            suspect, {g: {"decision": d, "reason": f"{g}'s reason"} for g, d in decisions.items()}
        )

    both = said(a="trained-on-generator", b="trained-on-generator", c="not-trained-on-generator")
    assert (both["text"], both["correct"]) == ("from several: a, b", True)
    unsure = said(a="inconclusive", b="not-trained-on-generator", c="error")
    assert unsure["text"] == "undecided" and unsure["correct"] is None
    assert unsure["why"] == "inconclusive for a: a's reason; error for c: c's reason; cleared by the other 1"
    alike = attribute_one(suspect, {g: {"decision": "inconclusive", "reason": "alike"} for g in "abc"})
    assert alike["why"] == "inconclusive for a, b, c: alike"
    one = said(a="trained-on-generator", b="inconclusive", c="not-trained-on-generator")
    assert (one["text"], one["correct"], one["undecided"]) == ("from a", False, ["b"])
    cleared = said(a="not-trained-on-generator", b="not-trained-on-generator", c="not-trained-on-generator")
    assert (cleared["text"], cleared["correct"]) == ("none of the candidates", False)


def _bad(doc: dict, where: str) -> None:
    """Break `doc` in one place (`where`: which)."""
    if where == "top":
        doc["suspects"] = doc.pop("suspect")
    elif where == "generator key":
        doc["generator"][1]["stlye"] = doc["generator"][1].pop("style")
    elif where == "truth":
        doc["suspect"][0]["truth"] = "plian"
    elif where == "attribute_by":
        doc["fleet"]["attribute_by"] = "calibrate"
    elif where == "task of suspect":
        del doc["suspect"][1]["task"]
    elif where == "tasks of generator":
        doc["generator"][0]["tasks"] = ["four"]
    elif where == "same name":
        del doc["generator"][0]["name"], doc["generator"][1]["name"]
    elif where == "shadow":
        doc["shadow"]["per_clas"] = 3
    elif where == "task classes":
        doc["task"][1]["image_size"] = 2
    elif where == "executor":
        doc["executor"] = {"use": "nowhere"}
    elif where == "test":
        doc["test"][1]["threshold"] = "high"
    elif where == "suspect plugin key":
        doc["suspect"][3]["model_dri"] = doc["suspect"][3].pop("model_dir")


BAD = {
    "top": "fleet.toml: unknown top-level key 'suspects' (did you mean 'suspect'?)",
    "generator key": "fleet.toml: [generator striped] unknown key 'stlye' (did you mean 'style'?)",
    "truth": "fleet.toml: [suspect three-plain] key 'truth': 'plian' is not a candidate",
    "attribute_by": "fleet.toml: [fleet] key 'attribute_by': no [[test]] named 'calibrate'",
    "task of suspect": "fleet.toml: [suspect three-striped] missing key 'task'",
    "tasks of generator": "fleet.toml: [generator plain] key 'tasks': no task named 'four'",
    "same name": "fleet.toml: [generator shapes] generator name 'shapes' is used twice; give one a `name`",
    "shadow": "fleet.toml: [shadow] unknown key 'per_clas' (did you mean 'per_class'?)",
    "task classes": "fleet.toml: [task five] key 'image_size' must be at least 4 (got 2)",
    "executor": "fleet.toml: [executor] key 'use': unknown executor 'nowhere'",
    "test": "fleet.toml: [test 2] key 'threshold' must be float, got str 'high'",
    "suspect plugin key": "fleet.toml: [suspect five-plain] unknown key 'model_dri'",
}


@pytest.mark.parametrize("where", list(BAD))
def test_a_bad_fleet_file_is_refused_before_any_work(setting, plugins, tmp_path, where):
    doc = tomllib.loads(setting["file"].read_text())
    _bad(doc, where)
    path = tmp_path / "fleet.toml"
    path.write_text(toml_dumps(doc), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["fleet", str(path), "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store")],
        obj={"plugins": plugins},
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    message = result.output.strip().removeprefix("error: ").replace(str(tmp_path) + "/", "")
    assert message.startswith(BAD[where]), message
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_a_suspect_that_cannot_be_opened_stops_the_fleet_before_its_first_audit(setting, plugins, tmp_path):
    doc = tomllib.loads(setting["file"].read_text())
    doc["suspect"][-1] = {"name": "five-timm", "task": "five", "use": "timm", "checkpoint": str(tmp_path)}
    fleet = fleet_from_dict(doc, plugins, source="fleet.toml", base_dir=tmp_path)
    with pytest.raises(Exception, match=r"\[suspect five-timm\]") as raised:
        run_fleet(fleet, plugins, tmp_path / "out", Store(tmp_path / "store"), False)
    assert type(raised.value).__module__ == "trainprove_core.errors"
    assert not (tmp_path / "out").exists() and not (tmp_path / "store" / "image-sets").exists()


def test_the_executor_named_on_the_command_line_runs_every_audit(setting, plugins):
    doc = tomllib.loads(setting["file"].read_text())
    fleet = fleet_from_dict(doc, plugins, source="fleet.toml", executor="local")
    assert {a.config.executor.use for a in fleet.audits} == {"local"}
    assert all(a.document["executor"] == {"use": "local"} for a in fleet.audits)
    with pytest.raises(ConfigError, match=r"^fleet.toml: \[executor\] key 'use': unknown executor 'else'"):
        fleet_from_dict({**doc, "executor": {"use": "local"}}, plugins, source="fleet.toml", executor="else")


def test_toml_dumps_round_trips_what_trainprove_writes():
    doc = {
        "seed": 1,
        "fleet": {"known_sources": ["real"], "attribute_by": None},
        "task": {"classes": ["a", "b"], "image_size": 8},
        "test": [{"use": "calibrated", "recipes": {"a b": {"seed": 1, "crop_scale": [0.5, 1.0]}}}],
    }
    assert tomllib.loads(toml_dumps(doc)) == {**doc, "fleet": {"known_sources": ["real"]}}


def test_the_docs_example_makes_one_audit_per_candidate():
    text = (Path(__file__).resolve().parent.parent / "docs" / "fleet.md").read_text()
    fleet = expand(tomllib.loads(re.search(r"```toml\n(# fleet.toml.*?)```", text, re.S).group(1)))
    assert [a.generator for a in fleet.audits] == [
        "stable-diffusion-v1-4",
        "my-finetune",
        "latent-consistency",
    ]
    assert fleet.attribute_by == "calibrated" and fleet.suspects[1].expected == {"latent-consistency"}
    calibrated = fleet.audit("", "latent-consistency").document["test"][1]
    assert calibrated["references"] == ["stable-diffusion-v1-4", "my-finetune", "cifar10-real"]
    assert calibrated["reference_settings"]["my-finetune"] == {
        "use": "stable-diffusion-v1-4",
        "model": "./checkpoints/my-finetune",
    }
    assert [s["truth"] for s in fleet.audit("", "my-finetune").document["suspect"][1:]] == [
        "not-trained-on-generator"
    ]


def test_a_fleet_of_two_embedded_digit_generators_attributes_real_digits_to_none(tmp_path, plugins):
    """The real embedded generators (plugins/trainprove-embedded) as candidates, `digits-real` a known
    source that is no candidate; small sets and `pixel-logistic` models keep it to seconds."""
    classes = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    store = Store(tmp_path / "store")
    ws = Workspace.open(Task(classes, 8), plugins, store, show_progress=False)
    suspects = []
    for source in ("digits-gmm", "digits-vae", "digits-real"):
        generator = ws.generator(ws.plugin_table("generator", source, {}))
        images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 30, seed=5))
        model = ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0]
        name = source.removeprefix("digits-")
        suspects.append({"name": name, "use": "pixel-logistic", "model_dir": str(model), "truth": source})
    document = {
        "seed": 1,
        "fleet": {"known_sources": ["digits-real"]},
        "task": {"classes": list(classes), "image_size": 8},
        "generator": [{"use": "digits-gmm"}, {"use": "digits-vae"}],
        "shadow": {"prompt": "a {label}", "per_class": 30, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 30, "batch_size": 20},
        "suspect": suspects,
    }
    fleet = fleet_from_dict(document, plugins, source="digits.toml")
    result = run_fleet(fleet, plugins, tmp_path / "out", store, show_progress=False)
    assert [(r["suspect"], r["text"], r["correct"]) for r in result.attribution["suspects"]] == [
        ("gmm", "from digits-gmm", True),
        ("vae", "from digits-vae", True),
        ("real", "none of the candidates", True),
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "attribution.json",
        "attribution.md",
        "digits-gmm",
        "digits-vae",
        "index.html",
    ]


def test_audits_with_the_same_executor_table_share_one_executor_closed_when_the_fleet_ends(setting, plugins):
    from trainprove_core.executors import LocalExecutor
    from trainprove_core.hookspecs import hookimpl
    from trainprove_core.records import ExecutorSpec

    built, closed = [], []

    class Counted(LocalExecutor):
        def __init__(self):
            built.append(self)

        def close(self):
            closed.append(self)

    class Plugin:
        @hookimpl
        def trainprove_executors(self):
            return [ExecutorSpec("counted", lambda s: Counted(), "counts how often it is built")]

    plugins.register(Plugin(), "counted-executor")
    doc = {**tomllib.loads(setting["file"].read_text()), "executor": {"use": "counted"}}
    fleet = fleet_from_dict(doc, plugins, source="fleet.toml")
    result = run_fleet(fleet, plugins, setting["root"] / "counted", setting["store"], False)
    assert len(fleet.audits) == 4 and len(result.reports) == 4
    assert len(built) == 1 and closed == built  # one for all four audits, closed once at the end
    shared = Counted()  # an executor passed in runs every audit and stays open
    run_fleet(fleet, plugins, setting["root"] / "passed", setting["store"], False, executor=shared)
    assert len(built) == 2 and closed == built[:1]


def test_the_fleet_attributes_by_the_rule_that_governs_the_reports_unless_told():
    from trainprove_core.fleet.spec import default_attribution

    tests = [{"use": "trainprove"}, {"use": "calibrated", "name": "cal"}]
    assert default_attribution(tests, ["trainprove", "cal"]) == "cal"
    tests[0]["governs"] = True
    assert default_attribution(tests, ["trainprove", "cal"]) == "trainprove"
    assert default_attribution([{"use": "welch"}, {"use": "trainprove"}], ["welch", "trainprove"]) == "welch"
