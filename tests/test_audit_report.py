"""The report is typed (`AuditReport`): report.json is its `to_json()`, byte for byte, in report.json's key
order, and a report read back is the same report."""

from __future__ import annotations

import json

from core_test_helpers import base_audit

from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.engine import AuditReport, Workspace, run_audit
from trainprove_core.store import Store
from trainprove_core.task import Task

KEYS = [
    "trainprove_version",
    "created",
    "wall_seconds",
    "task",
    "generator",
    "shadow",
    "validation",
    "suspects",
    "verdicts",
    "negative_control",
    "positive_control",
    "warnings",
    "errors",
    "timings",
    "counts",
    "manifest",
]


def test_report_json_is_the_typed_reports_document(plugins, tmp_path):
    store = Store(tmp_path / "store")
    with Workspace.open(Task(("disc", "ring", "hbar"), 16), plugins, store, False) as ws:
        generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": 1.0}))
        images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 20, seed=3))
        model = ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0]
    doc = base_audit(
        shadow={"prompt": "a {label}", "per_class": 20, "trainer": "pixel-logistic"},
        validation={"prompt": "a photo of a {label}", "per_class": 20, "batch_size": 10},
        suspect=[
            {
                "name": "s",
                "use": "pixel-logistic",
                "model_dir": str(model),
                "truth": "not-trained-on-generator",
            }
        ],
        test=[{"use": "trainprove"}, {"use": "accuracy-threshold"}],
    )
    result = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out", store, False, html=False)
    report = result.report
    assert isinstance(report, AuditReport)
    written = (tmp_path / "out" / "report.json").read_text(encoding="utf-8")
    assert written == json.dumps(report.to_json(), indent=2, default=str)
    assert list(json.loads(written)) == KEYS == list(report)
    assert AuditReport.from_json(json.loads(written)).to_json() == json.loads(written)
    # Fields and report.json's keys read the same thing.
    assert report.verdicts is report["verdicts"] and len(report.verdicts) == 2
    assert report.suspects[0]["name"] == "s" and report.timings["report"] >= 0
