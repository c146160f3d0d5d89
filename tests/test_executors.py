"""The executor seam: the built-in `local` executor passes the contract third-party executors are held
to, and an audit's executor is closed however the audit ends."""

from __future__ import annotations

import pytest
from core_test_helpers import base_audit

from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.executors import LocalExecutor
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import ExecutorSpec
from trainprove_core.store import Store
from trainprove_core.testing import ExecutorContract


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor_factory(self):
        return lambda **settings: LocalExecutor()


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
