"""The executor seam: the built-in `local` and `processes` executors pass the contract third-party
executors are held to, an audit's executor is closed however the audit ends, and worker processes make
exactly what the driver makes."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from core_test_helpers import base_audit

from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.executors import LocalExecutor, ProcessExecutor
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import ExecutorSpec
from trainprove_core.store import Store
from trainprove_core.testing import ExecutorContract


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor_factory(self):
        return lambda **settings: LocalExecutor()


EVERY_KIND = ("generate", "train", "query")


class TestProcessExecutor(ExecutorContract):
    @pytest.fixture
    def executor_factory(self):
        return lambda **settings: ProcessExecutor(2, EVERY_KIND)


class TestProcessExecutorTrainingsOnly(ExecutorContract):
    @pytest.fixture
    def executor_factory(self):
        return lambda **settings: ProcessExecutor(2)


def test_by_default_queries_stay_in_the_driver():
    """Image chunks and trainings go to the workers; queries run in the driver (on its idle cores), and no
    worker starts for queries alone."""
    from trainprove_core.testing import contract_work

    here = f"{socket.gethostname()}:{os.getpid()}"
    works = contract_work()
    executor = ProcessExecutor(2)
    try:
        assert executor.parallel == frozenset({"generate", "train"})
        queries = [w for w in works if w.kind == "query"]
        assert queries and {o.worker for _, o in executor.run(queries)} == {here}
        assert executor._pool is None
        ran = {w.kind: o.worker for w, o in executor.run(works)}
        assert ran["query"] == here and ran["generate"] != here
    finally:
        executor.close()


def test_worker_processes_make_the_same_models_answers_and_verdicts_as_the_driver(
    plugins, suspect_pool, tmp_path
):
    """Two audits of the same file into two stores, one run in this process and one by two worker
    processes: the same store entries (keys), bit for bit the same trained shadow, the same verdicts."""
    doc = base_audit(
        suspect=[
            {"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])},
            {"name": "other", "use": "timm", "checkpoint": str(suspect_pool["other"])},
        ]
    )
    reports = {}
    for use in ("local", "processes"):
        extra = {"workers": 2, "kinds": list(EVERY_KIND)} if use == "processes" else {}
        config = config_from_dict({**doc, "executor": {"use": use, **extra}}, plugins)
        result = run_audit(config, plugins, tmp_path / use, Store(tmp_path / f"store-{use}"), False)
        assert not result.errors
        reports[use] = result.report
    for kind in ("image-sets", "models", "answers"):
        local = sorted(p.name for p in (tmp_path / "store-local" / kind).iterdir())
        assert local == sorted(p.name for p in (tmp_path / "store-processes" / kind).iterdir()), kind
    for model in (tmp_path / "store-local" / "models").iterdir():
        for f in model.rglob("*.safetensors"):
            twin = tmp_path / "store-processes" / "models" / model.name / f.relative_to(model)
            assert f.read_bytes() == twin.read_bytes()

    def decisions(report):
        return [(v["suspect"], v["test"], v["decision"], v["statistic"]) for v in report["verdicts"]]

    assert decisions(reports["local"]) == decisions(reports["processes"])
    assert reports["processes"]["counts"]["models_trained"] >= 1


STOP_THE_GROUP = """
import os, signal, sys
from trainprove_core import hookimpl
from trainprove_core.cli import _stop_on_sigterm, cli
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins

SIGNAL = getattr(signal, sys.argv[4])


class Stop:  # a terminal's Ctrl-C (SIGINT) or a batch system's SIGTERM, to the whole process group
    @hookimpl
    def trainprove_after_generate(self, role, image_set):
        if role == "validation":
            os.killpg(os.getpgid(0), SIGNAL)


signal.signal(signal.SIGINT, signal.default_int_handler)
_stop_on_sigterm()  # as `trainprove` (main) does
plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
plugins.register(Stop(), "stop", "tests")
sys.argv = ["trainprove", "audit", sys.argv[1], "--out", sys.argv[2], "--store", sys.argv[3]]
cli(obj={"plugins": plugins}, prog_name="trainprove")
"""


@pytest.mark.parametrize(
    ("signame", "code", "said"), [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated (SIGTERM)")]
)
def test_ctrl_c_or_sigterm_stops_the_worker_processes_and_keeps_what_is_done(
    suspect_pool, tmp_path, signame, code, said
):
    """Ctrl-C on a terminal (or SIGTERM to the group, as a batch system sends) reaches the workers too:
    they ignore it, the driver stops them, and the audit ends as with `local` (exit 130, or 143 for
    SIGTERM, the work kept), with no worker process left behind."""
    import subprocess
    import sys

    doc = base_audit(suspect=[{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}])
    lines = []
    executor = {"use": "processes", "workers": 2, "kinds": list(EVERY_KIND)}
    for table, keys in {**doc, "executor": executor}.items():
        for entry in keys if isinstance(keys, list) else [keys]:
            lines.append(f"[[{table}]]" if isinstance(keys, list) else f"[{table}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    (tmp_path / "audit.toml").write_text("\n".join(lines) + "\n")
    args = [str(tmp_path / "audit.toml"), str(tmp_path / "out"), str(tmp_path / "store"), signame]
    proc = subprocess.Popen(
        [sys.executable, "-c", STOP_THE_GROUP, *args],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the signal reaches it and its workers only
    )
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == code, stderr
    assert f"{said}: every finished image chunk" in stderr
    # nobody left in its group: no worker outlived it (multiprocessing's resource tracker notices its
    # parent is gone on its own; it is given up to a minute)
    for _ in range(600):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        left = subprocess.run(["ps", "-o", "pid,args", "-g", str(proc.pid)], capture_output=True, text=True)
        pytest.fail(f"processes left in the audit's group:\n{left.stdout}")


class Watched(LocalExecutor):
    """The local executor, noting when it is closed and failing on the n-th item it runs."""

    def __init__(self, log, fail_at=None):
        self.log, self.fail_at, self.count = log, fail_at, 0

    def run(self, works):
        for work, outcome in super().run(works):
            self.count += 1
            if self.count == self.fail_at:
                raise KeyboardInterrupt  # as Ctrl-C in the middle of an audit
            yield work, outcome

    def close(self):
        self.log.append("closed")


def test_the_audit_closes_its_executor_when_it_ends_and_on_ctrl_c(plugins, suspect_pool, tmp_path):
    log = []

    class Plugin:
        @hookimpl
        def trainprove_executors(self):
            return [
                ExecutorSpec("watched", lambda s: Watched(log), "closes"),
                ExecutorSpec("interrupted", lambda s: Watched(log, fail_at=3), "Ctrl-C"),
            ]

    plugins.register(Plugin(), "watched")
    doc = base_audit(suspect=[{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}])
    store = Store(tmp_path / "store")
    with pytest.raises(KeyboardInterrupt):
        run_audit(
            config_from_dict({**doc, "executor": {"use": "interrupted"}}, plugins),
            plugins,
            tmp_path / "a",
            store,
            False,
        )
    assert log == ["closed"]
    result = run_audit(
        config_from_dict({**doc, "executor": {"use": "watched"}}, plugins),
        plugins,
        tmp_path / "b",
        store,
        False,
    )
    assert log == ["closed", "closed"] and result.report["verdicts"]
    # A shared executor passed in is the caller's to close.
    shared = Watched(log)
    run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "c", store, False, executor=shared)
    assert log == ["closed", "closed"]
