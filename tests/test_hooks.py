"""Lifecycle, executor and command hooks, exercised by a plugin the way a third party would write it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from core_test_helpers import base_audit

from trainprove_core.audit import run_audit
from trainprove_core.cli import cli
from trainprove_core.config import config_from_dict
from trainprove_core.executors import ModelCache, execute
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import ExecutorSpec
from trainprove_core.store import Store


class Reversed:
    """A third party's executor: runs work last-first, each item pickled (with cloudpickle, as Ray does:
    a plugin's factory may be a closure) as if sent to another process
    (so the model is built from its `ModelRef` on the "worker", once per model, and `local` never travels)."""

    parallel = False

    def __init__(self, calls):
        self.calls, self.models = calls, ModelCache()

    def run(self, works):
        for work in reversed(list(works)):
            shipped = cloudpickle.loads(cloudpickle.dumps(work))
            assert shipped.local is None and not shipped.in_driver
            yield work, execute(shipped, self.models)

    def close(self):
        self.calls.append(("close", sorted(self.models.keys())))


class Recorder:
    """Observes an audit and offers an executor that runs chunks last-first."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def trainprove_before_audit(self, config, out_dir):
        self.calls.append(("before_audit", config.generator.use))

    @hookimpl
    def trainprove_after_generate(self, role, image_set):
        self.calls.append(("after_generate", role, len(image_set)))

    @hookimpl
    def trainprove_after_query(self, suspect, answers, queries):
        self.calls.append(("after_query", suspect, queries))

    @hookimpl
    def trainprove_after_verdict(self, verdict):
        self.calls.append(("after_verdict", verdict.suspect, verdict.decision))

    @hookimpl
    def trainprove_after_audit(self, report, out_dir):
        self.calls.append(("after_audit", len(report["verdicts"])))

    @hookimpl
    def trainprove_executors(self):
        return [ExecutorSpec("reversed", lambda settings: Reversed(self.calls), "last chunk first, pickled")]

    @hookimpl
    def trainprove_commands(self, cli):
        @cli.command()
        def hello():
            """Say hello."""
            print("hello from a plugin")


def test_lifecycle_hooks_and_a_plugin_executor(plugins, suspect_pool, tmp_path):
    global cloudpickle
    cloudpickle = pytest.importorskip("cloudpickle")
    recorder = Recorder()
    plugins.register(recorder, "recorder")
    doc = base_audit(
        suspect=[{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}],
        executor={"use": "reversed"},
    )
    store = Store(tmp_path / "store")
    first = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "a", store, show_progress=False)
    assert recorder.calls == [
        ("before_audit", "shapes"),
        ("after_generate", "shadow", 180),
        ("after_generate", "validation", 300),
        ("after_query", "shadow", 300),
        ("after_query", "same", 300),
        ("after_verdict", "same", first.report["verdicts"][0]["decision"]),
        ("after_audit", 1),
        ("close", recorder.calls[-1][1]),
    ]
    # One model built per key on the "worker": the generator, the trainer, the shadow, the suspect.
    assert len(recorder.calls[-1][1]) == 4
    assert first.report["suspects"][0]["queries_sent"] == 300  # counted on the driver
    # Chunks done in reverse order give the same sets as the local executor's.
    doc["executor"] = {"use": "local"}
    local = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "b", Store(tmp_path / "s2"), False)
    assert local.report["manifest"]["hashes"] == first.report["manifest"]["hashes"]
    assert local.report["verdicts"] == first.report["verdicts"]


class Clumsy:
    """An observer with a bug in two of its hooks."""

    @hookimpl
    def trainprove_after_verdict(self, verdict):
        raise RuntimeError("disk full")

    @hookimpl
    def trainprove_before_audit(self, config, out_dir):
        raise KeyError("token")


def test_an_observer_that_raises_is_reported_and_the_audit_completes(plugins, suspect_pool, tmp_path):
    recorder = Recorder()
    plugins.register(Clumsy(), "clumsy")
    plugins.register(recorder, "recorder")
    doc = base_audit(suspect=[{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}])
    result = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "a", Store(tmp_path / "s"), False)
    assert (tmp_path / "a" / "report.json").exists() and result.report["verdicts"]
    assert [e for e in result.report["errors"] if e.startswith("observer 'clumsy' failed")] == [
        "observer 'clumsy' failed in trainprove_before_audit: KeyError: 'token'",
        "observer 'clumsy' failed in trainprove_after_verdict: RuntimeError: disk full",
    ]
    assert result.errors == [] and len(result.observer_errors) == 2  # no suspect failed: exit code 0
    # The other observers still saw everything.
    assert recorder.calls[0][0] == "before_audit" and recorder.calls[-1][0] == "after_audit"


def test_plugin_commands_join_the_cli(plugins):
    plugins.register(Recorder(), "recorder")
    plugins.hook.trainprove_commands(cli=cli)
    result = CliRunner().invoke(cli, ["hello"], obj={"plugins": plugins})
    assert result.output == "hello from a plugin\n"
