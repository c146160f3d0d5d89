"""The whole suite's scheduling under pytest-xdist (`-n auto --dist loadgroup`, pyproject.toml).

A test file is one unit of work: its module and session fixtures are built once, on one worker, as in a
serial run. A few units span files (`pytest.mark.xdist_group` in the file): tests that share an expensive
session artifact (the demo's suspect pool in the session store) or a resource a second copy would fight
over (a local Ray cluster). The units known to be long go first, so that the other worker runs the rest
beside them instead of after them. Nothing here changes what a test checks, only where and when it runs;
with `-n 0` (or without xdist) the order is the same and every test runs in this one process."""

from __future__ import annotations

import pytest

# Units that take minutes, longest first (measured: docs/performance.md, "The suite").
FIRST = (
    "demo-pool",
    "ray",
    "tests/test_gpu_check.py",
    "plugins/trainprove-timm/tests/test_training_resume.py",
)


def _group(item: pytest.Item) -> str:
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return mark.args[0] if mark.args else mark.kwargs.get("name", "default")
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), len(FIRST)))  # stable: the rest keep their order
