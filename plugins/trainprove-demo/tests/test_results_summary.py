"""bench/decision_tests.py --summary: the both-worlds table at the top of docs/results.md, from each world's
records.json, kept when the digits page is regenerated (the benchmark runs over the demo's worlds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.fixture
def decision_tests(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import decision_tests

    yield decision_tests
    sys.modules.pop("decision_tests", None)


def _records(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    bench = [
        {
            "setting": s,
            "test": t,
            "truth": truth,
            "decision": d,
            "suspect": f"x{i}",
            "defender": "g",
            "queries": 1,
        }
        for i, (s, t, truth, d) in enumerate(rows)
    ]
    path.write_text(json.dumps({"bench": bench, "demo": [], "sequential": []}), encoding="utf-8")
    return path


def test_the_summary_counts_each_world_and_setting_and_is_kept_when_the_page_is_rewritten(
    decision_tests, tmp_path
):
    trained, cleared = "trained-on-generator", "not-trained-on-generator"
    digits = _records(
        tmp_path / "d.json",
        [("styled", "calibrated", cleared, trained), ("styled", "calibrated", trained, "inconclusive")],
    )
    fashion = _records(tmp_path / "f.json", [("hard", "trainprove", trained, cleared)])
    block = decision_tests.summary_block({"digits": digits, "fashion": fashion})
    rows = [line for line in block if line.startswith("| digits") or line.startswith("| fashion")]
    assert rows == [
        "| digits | styled | calibrated | 1/1 = 1.000 [0.025, 1.000] | 0/1 = 0.000 [0.000, 0.975] | 0.500 | "
        "0.000 [0.000, 0.975] |",
        "| fashion | hard | trainprove | n/a | 1/1 = 1.000 [0.025, 1.000] | 0.000 | 0.000 [0.000, 0.975] |",
    ]
    page = decision_tests.with_summary("# Decision rules, measured\n\nProduced by x.\n", block)
    assert page.startswith("# Decision rules, measured\n\n" + block[0])
    assert page.endswith(block[-1] + "\n\nProduced by x.\n")
    # A regenerated page (no block) gets the old block back; a new block replaces the old one.
    regenerated = decision_tests.with_summary("# Decision rules, measured\n\nProduced by y.\n", None)
    assert decision_tests.SUMMARY_BEGIN not in regenerated
    kept = decision_tests.with_summary(regenerated, decision_tests.summary_in(page))
    assert decision_tests.summary_in(kept) == block and kept.endswith("Produced by y.\n")
    replaced = decision_tests.with_summary(page, block[:2] + [block[-1]])
    assert replaced.count(decision_tests.SUMMARY_BEGIN) == 1 and "| digits" not in replaced
