from __future__ import annotations

import json

from core_test_helpers import base_audit

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
    assert (tmp_path / "out" / "report.html").read_text().count('<svg class="chart"') == 2
    assert result.report["suspects"][0]["queries_sent"] == 300

    # A second run with the same audit queries nothing and trains nothing.
    again = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out2", store, show_progress=False)
    assert [s["queries_sent"] for s in again.report["suspects"]] == [0, 0]
    assert again.report["verdicts"] == result.report["verdicts"]


def test_negative_control_passes_for_a_distinct_source_and_warns_for_a_lookalike(
    plugins, suspect_pool, tmp_path
):
    store = Store(tmp_path / "store")
    suspects = [{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}]
    distinct = base_audit(suspect=suspects, negative_control={"use": "shapes", "style": 1.0})
    report = run_audit(config_from_dict(distinct, plugins), plugins, tmp_path / "a", store, False).report
    assert [v["decision"] for v in report["negative_control"]["verdicts"]] == ["not-trained-on-generator"]
    assert report["warnings"] == []
    assert "Negative control" in (tmp_path / "a" / "report.html").read_text()

    lookalike = base_audit(suspect=suspects, negative_control={"use": "shapes", "style": 0.0, "noise": 0.12})
    report = run_audit(config_from_dict(lookalike, plugins), plugins, tmp_path / "b", store, False).report
    assert report["negative_control"]["verdicts"][0]["decision"] == "trained-on-generator"
    assert report["warnings"] and report["warnings"][0].startswith(
        "negative control failed: trainprove judged"
    )
    # The control decides: the accusation it casts doubt on is reported inconclusive, and says why.
    (same,) = report["verdicts"]
    assert same["decision"] == "inconclusive" and same["details"]["overruled"]
    assert "but it says the same of a model trained on shapes's images" in same["explanation"]


def test_a_cleared_positive_control_turns_the_audits_clearings_inconclusive(plugins, suspect_pool, tmp_path):
    store = Store(tmp_path / "store")
    suspects = [{"name": "other", "use": "timm", "checkpoint": str(suspect_pool["other"])}]
    # A recipe unlike the shadow's that learns the generator's images well: the control is not cleared.
    good = base_audit(
        suspect=suspects,
        positive_control={
            "trainer": "timm",
            "arch": "test_resnet",
            "epochs": 10,
            "batch_size": 32,
            "lr": 2e-3,
            "hflip": False,
            "crop_scale": [0.8, 1.0],
        },
    )
    report = run_audit(config_from_dict(good, plugins), plugins, tmp_path / "a", store, False).report
    assert report["positive_control"]["verdicts"][0]["decision"] == "trained-on-generator"
    assert [v["decision"] for v in report["verdicts"]] == ["not-trained-on-generator"]
    assert "Positive control" in (tmp_path / "a" / "report.html").read_text()

    # Trained on the generator's images, learned the task, yet cleared (two epochs; a validation batch of 30
    # makes TrainProVe's bound tight enough to see it): this audit's clearings cannot be trusted and are
    # reported inconclusive. The control's table inherits [shadow]'s recipe and changes two keys.
    short = base_audit(suspect=suspects, positive_control={"trainer": "timm", "epochs": 2, "lr": 1e-3})
    short["validation"]["batch_size"] = 30
    report = run_audit(config_from_dict(short, plugins), plugins, tmp_path / "b", store, False).report
    assert report["positive_control"]["accuracy_own_images"] > 0.5
    assert report["positive_control"]["verdicts"][0]["decision"] == "not-trained-on-generator"
    assert report["warnings"][0].startswith("positive control failed: trainprove judged")
    assert [v["decision"] for v in report["verdicts"]] == ["inconclusive"]


def test_a_control_that_never_learned_is_a_failed_control_and_overrules_nothing(
    plugins, suspect_pool, tmp_path
):
    """One epoch at a tiny learning rate: the control is near chance on the generator's own images, so its
    clearing says nothing about the tests; it is reported as failed, and the suspect's verdict stands."""
    suspects = [{"name": "other", "use": "timm", "checkpoint": str(suspect_pool["other"])}]
    weak = base_audit(suspect=suspects, positive_control={"trainer": "timm", "epochs": 1, "lr": 1e-5})
    report = run_audit(config_from_dict(weak, plugins), plugins, tmp_path / "o", Store(tmp_path / "s"), False)
    report = report.report
    assert report["positive_control"]["accuracy_own_images"] < 1 / 3 + 0.1
    (warning,) = report["warnings"]
    assert warning.startswith("positive control failed: a model trained on shapes's own images")
    assert "near chance" in warning and "nothing was overruled" in warning
    assert [v["decision"] for v in report["verdicts"]] == ["not-trained-on-generator"]
    assert "details" not in report["verdicts"][0] or "overruled" not in report["verdicts"][0]["details"]


def test_the_positive_control_inherits_the_shadows_recipe(plugins):
    doc = base_audit(positive_control={"trainer": "timm", "arch": "test_efficientnet"})
    doc["suspect"] = [{"name": "x", "use": "timm", "checkpoint": "."}]
    config = config_from_dict(doc, plugins)
    control, shadow = config.positive_control.settings, config.trainer.settings
    assert control["arch"] == "test_efficientnet" and shadow["arch"] == "test_resnet"
    for key in ("epochs", "batch_size", "hflip", "crop_scale"):  # not the trainer's CIFAR defaults
        assert control[key] == shadow[key], key
    # The report's copy of the table shows the recipe the control was trained with, inherited keys too.
    assert config.public_document()["positive_control"]["epochs"] == 12


def test_a_shadow_near_chance_is_named_as_the_cause(plugins, suspect_pool, tmp_path):
    """A recipe that does not suit the images (here: one epoch at a tiny learning rate) leaves the shadow
    near chance; the audit says so, and what to change, instead of only 'inconclusive'."""
    doc = base_audit(suspect=[{"name": "same", "use": "timm", "checkpoint": str(suspect_pool["same"])}])
    doc["shadow"].update(epochs=1, lr=1e-6)
    report = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "o", Store(tmp_path / "s"), False)
    assert report.report["shadow"]["validation_accuracy"] < 0.45
    assert report.report["warnings"][0].startswith("the shadow model scores")
    assert "[shadow] epochs" in report.report["warnings"][0]
    assert report.report["verdicts"][0]["decision"] == "inconclusive"
