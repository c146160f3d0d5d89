"""Issue 23: nothing lost and nothing leaked under the ways a shared machine fails: numbers a user types
(nan, inf), a store shared between users, a full or read-only disk, and paths a user can type."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from click.testing import CliRunner

from trainprove_core.cli import cli
from trainprove_core.store import Store


def make_entries(store: Store, n: int = 3) -> list:
    for i in range(n):
        store.chunked("sets", {"entry": i}, [0], lambda pending: ((j, {"x": np.arange(3)}) for j in pending))
    return [store.location("sets", {"entry": i}) for i in range(n)]


def invoke(plugins, *args: str):
    plugins.add_commands(cli) if "plan" not in cli.commands else None
    return CliRunner().invoke(cli, list(args), obj={"plugins": plugins})


# ---- numbers a user types ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["nan", "NaN", "inf", "-inf", "1e999", "-1"])
def test_gc_refuses_non_finite_days_and_removes_nothing(tmp_path, plugins, days):
    store = Store(tmp_path / "store", notify=lambda m: None)
    entries = make_entries(store)
    result = invoke(plugins, "store", "gc", "--store", str(store.root), "--unused-days", days)
    assert result.exit_code == 2 and "--unused-days" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert all(e.exists() for e in entries)


def test_gc_keeps_entries_read_within_the_last_hour_unless_told(tmp_path, plugins):
    store = Store(tmp_path / "store", notify=lambda m: None)
    recent, old, ancient = make_entries(store)
    now = time.time()
    os.utime(recent / "meta.json", (now - 600, now - 600))  # read ten minutes ago
    os.utime(old / "meta.json", (now - 7200, now - 7200))  # two hours ago
    os.utime(ancient / "meta.json", (1e9, 1e9))
    kept = invoke(plugins, "store", "gc", "--store", str(store.root), "--unused-days", "0")
    assert kept.exit_code == 0, kept.output
    assert "removed 2 unused" in kept.output and "kept 1 entries read within the last hour" in kept.output
    assert recent.exists() and not old.exists() and not ancient.exists()
    told = invoke(plugins, "store", "gc", "--store", str(store.root), "--unused-days", "0", "--include-recent")
    assert told.exit_code == 0 and "removed 1 unused" in told.output and not recent.exists()
    with pytest.raises(ValueError, match="finite"):
        store.remove_unused(float("nan"))


NUMERIC_OPTIONS = [
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "{bad}"),
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "1", "--seed", "{bad}"),
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "1", "--image-size", "{bad}"),
    ("store", "gc", "--store", "{out}", "--unused-days", "{bad}"),
    ("plan", "{audit}", "--drop", "{bad}"),
    ("plan", "{audit}", "--power", "{bad}"),
    ("plan", "{audit}", "--alpha", "{bad}"),
]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "0", "-1", "1e999"])
def test_every_numeric_option_refuses_what_is_not_a_number_in_range(tmp_path, plugins, bad):
    (tmp_path / "store").mkdir()
    audit = tmp_path / "audit.toml"
    audit.write_text("")
    for argv in NUMERIC_OPTIONS:
        if bad == "0" and argv[-2] in ("--seed", "--unused-days"):
            continue  # 0 is a valid seed and a valid number of days
        args = [a.format(out=tmp_path / "store", bad=bad, audit=audit) for a in argv]
        result = invoke(plugins, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for" in result.output and argv[-2] in result.output, (args, result.output)
        assert not (tmp_path / "store" / "sample").exists()
