"""A pytest plugin for plugin authors (installed with trainprove, active automatically).

Fixtures:
- `trainprove_plugins`: an isolated plugin set with only the core's own plugins; register yours with
  `trainprove_plugins.register(module, "name")`. Tests never pick up whatever else is installed.
- `trainprove_store`: an empty content-addressed store in a temporary directory.
- `trainprove_session_store`: one store shared by the whole test session; since keys are content hashes,
  tests that need the same expensive artifacts (the demo's suspect pool, say) build them once.
- `tiny_task`: a three-class task with 16x16 images.
"""

from __future__ import annotations

import pytest

from . import executors
from .plugins import PluginSet, new_plugin_set
from .store import Store
from .task import Task


def isolated_plugins(*plugins: tuple[object, str]) -> PluginSet:
    """A plugin set holding the core's plugins and the given `(module, name)` pairs, nothing else."""
    plugin_set = new_plugin_set()
    plugin_set.register(executors, "core", "trainprove")
    for module, name in plugins:
        plugin_set.register(module, name)
    return plugin_set


@pytest.fixture
def trainprove_plugins() -> PluginSet:
    return isolated_plugins()


@pytest.fixture
def trainprove_store(tmp_path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture(scope="session")
def trainprove_session_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.getbasetemp() / "trainprove-session-store")


@pytest.fixture
def tiny_task() -> Task:
    return Task(("zero", "one", "two"), 16)
