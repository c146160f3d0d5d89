"""The whole suite's scheduling under pytest-xdist (pyproject.toml: `-n auto --maxprocesses 4 --dist loadfile
--no-loadscope-reorder`): a unit of work is a test file, or one of the GROUPS of files below, and runs on
one worker, so its module and session fixtures are built once, as in a serial run. A group holds files
that share an expensive session artifact (the demo's suspect pool in the session store) or a resource that
a second copy would fight over (a local Ray cluster). The units known to take minutes go first (xdist's
own reordering by test count is off), so that the other workers run the rest beside them rather than after
them. Nothing here changes what a test checks, only where and when it runs; `-n 0` runs every test in this
one process, in the same order.

(pytest-xdist's own `xdist_group` marks rename node ids through an attribute pytest 9 no longer reads, so
they group nothing there; this table works from the node id alone, which is all the scheduler sees.)"""

from __future__ import annotations

import pytest

GROUPS = {
    # test_demo.py runs `make demo`; the http/onnx test asks the same pool, from the same session store.
    "tests/test_demo.py": "demo-pool",
    "plugins/trainprove-suspects/tests/test_demo_over_http_and_onnx.py": "demo-pool",
    # Each starts a local Ray cluster.
    "plugins/trainprove-ray/tests/test_ray.py": "ray",
    "plugins/trainprove-suspects/tests/test_budget_on_ray.py": "ray",
}
# Units that take minutes, the longest first (docs/performance.md, "The suite").
FIRST = (
    "demo-pool",
    "ray",
    "tests/test_gpu_check.py",
    "plugins/trainprove-timm/tests/test_training_resume.py",
)


def unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file's group, or its file."""
    path = nodeid.split("::", 1)[0]
    return GROUPS.get(path, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

    return ByUnit(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(unit(item.nodeid), len(FIRST)))  # stable: the rest keep their order
