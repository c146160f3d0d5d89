"""Plugin discovery through real entry points: a temporary distribution on sys.path, found by
importlib.metadata exactly as an installed third-party package would be."""

from __future__ import annotations

import sys
import textwrap

import pytest

from trainprove_core.errors import PluginError
from trainprove_core.plugins import load_plugins

GOOD = """
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec


class Coin:
    needs = "labels"


@hookimpl
def trainprove_decision_tests():
    return [DecisionTestSpec("{name}", lambda settings: Coin(), "a third-party test")]
"""


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Write a distribution (dist-info with entry points + module) to a directory on sys.path."""

    def make(dist: str, module: str, source: str, entry_name: str | None = None) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[trainprove]\n{entry_name or dist} = {module}\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    yield make
    for name in [m for m in sys.modules if m.startswith("tpx_")]:
        del sys.modules[name]


def test_third_party_plugin_is_found_and_listed(fake_distribution):
    fake_distribution("tpx-coin", "tpx_coin", GOOD.format(name="coin-flip"))
    plugins = load_plugins(strict=True)
    reg = plugins.get("test", "coin-flip")
    assert (reg.distribution, reg.version) == ("tpx-coin", "1.2.3")
    row = next(r for r in plugins.describe() if r["name"] == "coin-flip")
    assert row["kind"] == "test" and row["distribution"] == "tpx-coin"


def test_broken_plugin_is_reported_and_skipped(fake_distribution):
    fake_distribution("tpx-broken", "tpx_broken", "raise ImportError('needs libfoo')\n")
    plugins = load_plugins(strict=False)
    assert [f.plugin for f in plugins.failures] == ["tpx-broken"]
    assert "needs libfoo" in plugins.failures[0].error
    assert "trainprove" in plugins.names("test")  # everything else still loads
    with pytest.raises(PluginError, match="unknown test 'x'.*failed to load: tpx-broken"):
        plugins.get("test", "x")


def test_strict_mode_makes_a_broken_plugin_an_error(fake_distribution, monkeypatch):
    fake_distribution("tpx-broken", "tpx_broken", "raise ImportError('needs libfoo')\n")
    monkeypatch.setenv("TRAINPROVE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'tpx-broken' from tpx-broken 1.2.3 failed to load"):
        load_plugins()


def test_two_plugins_claiming_one_name_is_an_error_naming_both(fake_distribution):
    fake_distribution("tpx-dupe", "tpx_dupe", GOOD.format(name="trainprove"))
    with pytest.raises(
        PluginError,
        match="two plugins register the test 'trainprove': 'tpx-dupe' from distribution tpx-dupe and "
        "'trainprove-tests' from distribution trainprove-tests",
    ):
        load_plugins()
