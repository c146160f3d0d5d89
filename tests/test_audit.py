from __future__ import annotations

import json

from conftest import base_audit

from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.store import Store


def test_audit_end_to_end_separates_sources_and_caches(plugins, suspect_pool, tmp_path):
    doc = base_audit(
        suspect=[
            {
                "name": "same",
                "use": "timm",
                "checkpoint": str(suspect_pool["same"]),
                "truth": "trained-on-generator",
            },
            {
                "name": "other",
                "use": "timm",
                "checkpoint": str(suspect_pool["other"]),
                "truth": "not-trained-on-generator",
            },
        ]
    )
    store = Store(tmp_path / "store")
    result = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out", store, show_progress=False)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    decisions = {v["suspect"]: v["decision"] for v in report["verdicts"]}
    assert decisions == {"same": "trained-on-generator", "other": "not-trained-on-generator"}, report[
        "verdicts"
    ]
    assert all(v["correct"] for v in report["verdicts"])
    assert (tmp_path / "out" / "report.html").read_text().count("data:image/png") == 2
    assert result.report["suspects"][0]["queries_sent"] == 300

    # A second run with the same audit queries nothing and trains nothing.
    again = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out2", store, show_progress=False)
    assert [s["queries_sent"] for s in again.report["suspects"]] == [0, 0]
    assert again.report["verdicts"] == result.report["verdicts"]
