"""Every command that builds an audit closes the executor it opened (a Ray executor left open keeps its
cluster connected): `check`, `generate`, `plan`, `audit` and `fleet`, watched by a recording executor."""

from __future__ import annotations

import copy

import pytest
from click.testing import CliRunner

from trainprove_core.cli import cli
from trainprove_core.config import ImageSetConfig
from trainprove_core.engine import Workspace
from trainprove_core.executors import LocalExecutor
from trainprove_core.fleet import toml_dumps
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.hookspecs import hookimpl
from trainprove_core.plugins import load_plugins
from trainprove_core.records import ExecutorSpec
from trainprove_core.store import Store
from trainprove_core.task import Task

CLASSES = ["disc", "ring", "hbar"]


class Recording(LocalExecutor):
    """The local executor, noting each time one is opened and closed."""

    def __init__(self, log: list[str]):
        self.log = log
        log.append("open")

    def close(self) -> None:
        self.log.append("close")


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    log: list[str] = []

    class Plugin:
        @hookimpl
        def trainprove_executors(self):
            return [ExecutorSpec("recording", lambda s: Recording(log), "notes opening and closing")]

    plugins = load_plugins(strict=True)
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    plugins.register(Plugin(), "recording")
    group = copy.copy(cli)  # the plugins' commands (`plan`) on a copy: the shared group stays as it is
    group.commands = dict(cli.commands)
    plugins.add_commands(group)
    root = tmp_path_factory.mktemp("closed")
    store = Store(root / "store")
    with Workspace.open(Task(tuple(CLASSES), 16), plugins, store, False, "recording") as ws:
        generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": 1.0}))
        images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 20, seed=11))
        model = ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0]
    assert log == ["open", "close"]
    audit = {
        "task": {"classes": CLASSES, "image_size": 16},
        "generator": {"use": "shapes", "style": 0.0},
        "shadow": {"prompt": "a {label}", "per_class": 20, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 20, "batch_size": 10},
        "suspect": [{"name": "s", "use": "pixel-logistic", "model_dir": str(model)}],
        "test": [{"use": "trainprove"}],
        "executor": {"use": "recording"},
    }
    path = root / "audit.toml"
    path.write_text(toml_dumps(audit), encoding="utf-8")
    fleet = {**audit, "generator": [{"name": "plain", "use": "shapes", "style": 0.0}]}
    fleet["task"] = [{"name": "three", **audit["task"]}]
    fleet["suspect"] = [{**audit["suspect"][0], "task": "three"}]
    (root / "fleet.toml").write_text(toml_dumps(fleet), encoding="utf-8")
    return {"plugins": plugins, "group": group, "root": root, "log": log, "audit": path}


@pytest.mark.parametrize(
    "command",
    [
        ["check", "{audit}"],
        ["generate", "{audit}", "--out", "{root}/sets", "--no-progress"],
        ["plan", "{audit}", "--no-progress", "--drop", "0.2"],
        ["audit", "{audit}", "--out", "{root}/audit", "--no-progress", "--no-html"],
        ["fleet", "{root}/fleet.toml", "--out", "{root}/fleet", "--no-progress", "--no-html"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_closes_the_executor_it_opens(setting, command):
    log = setting["log"]
    log.clear()
    args = [a.format(audit=setting["audit"], root=setting["root"]) for a in command]
    args += ["--store", str(setting["root"] / "store")]
    result = CliRunner().invoke(setting["group"], args, obj={"plugins": setting["plugins"]})
    assert result.exit_code == 0, result.output
    assert log.count("open") == log.count("close"), f"trainprove {command[0]}: {log}"
