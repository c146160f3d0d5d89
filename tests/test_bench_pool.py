"""bench/suspect_pool.py: the benchmark's pool of suspects trained unlike the shadow.

Builds three suspects with --quick (two timm checkpoints, one ONNX file), checks the manifest, and asks
each suspect for labels through the real adapters of the plugin registry, as an audit would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

pytest.importorskip("timm")
pytest.importorskip("onnxruntime")
pytest.importorskip("trainprove_embedded")

import suspect_pool  # noqa: E402

from trainprove_core.config import ImageSetConfig, validate_table  # noqa: E402
from trainprove_core.plugins import load_plugins  # noqa: E402
from trainprove_core.task import Task  # noqa: E402

FORBIDDEN_PROMPTS = ("a {label}", "a photo of a {label}", "an image of a {label}")


def test_the_default_pool_plan():
    """The full plan, without training: size, truth for every defender, shares, names, prompts."""
    plans = suspect_pool.plan_suspects(
        suspect_pool.SETTINGS, suspect_pool.DEFAULT_SEEDS, suspect_pool.CONDITIONS
    )
    per_setting = {s: [p for p in plans if p.setting == s] for s in suspect_pool.SETTINGS}
    assert all(len(v) >= 150 for v in per_setting.values()), {k: len(v) for k, v in per_setting.items()}
    assert len({p.name for p in plans}) == len(plans)
    assert len(suspect_pool.CONDITIONS) >= 12
    for plan in plans:
        assert sum(part["share"] for part in plan.parts) == pytest.approx(1.0)
        assert sum(part["per_class"] for part in plan.parts) == plan.condition.per_class
        assert all(part["per_class"] > 0 for part in plan.parts)
        styled = [
            part["table"].get("house_style", True)
            for part in plan.parts
            if part["table"]["use"] != "digits-real"
        ]
        assert all(s == (plan.setting == "styled") for s in styled)
    for setting, group in per_setting.items():
        for defender in suspect_pool.DEFENDERS:
            guilty = [p for p in group if any(part["table"]["use"] == defender for part in p.parts)]
            assert len(guilty) >= 20, (setting, defender)
            assert len(group) - len(guilty) >= 100, (setting, defender)
    formats = {p.fmt for p in plans}
    assert formats == {"timm", "onnx"}
    prompts = [
        suspect_pool.TRAIN_PROMPT,
        suspect_pool.REAL_TEST["prompt"],
        suspect_pool.SOURCE_TEST["prompt"],
    ]
    assert len(set(prompts)) == 3
    assert not any(p in FORBIDDEN_PROMPTS or p.startswith("reference") for p in prompts)


def test_split_counts():
    assert suspect_pool.split_counts([0.25] * 4, 40) == [10, 10, 10, 10]
    assert suspect_pool.split_counts([0.2, 0.8], 15) == [3, 12]
    assert sum(suspect_pool.split_counts([0.25] * 4, 15)) == 15


def test_quick_pool_builds_and_loads_through_the_adapters(tmp_path, capsys):
    out = tmp_path / "pool"
    argv = [
        "--quick", "--out", str(out), "--setting", "styled", "--seeds", "1", "--sources", "gmm",
        "--conditions", "baseline,custom-cnn-onnx,mix-real-50",
    ]  # fmt: skip
    suspect_pool.main(argv)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["this_run"]["built_now"] == 3
    suspects = {s["name"]: s for s in manifest["suspects"]}
    assert set(suspects) == {
        "styled-baseline-gmm-s0",
        "styled-custom-cnn-onnx-gmm-s0",
        "styled-mix-real-50-gmm-s0",
    }
    assert manifest["quick"] is True and manifest["settings"] == ["styled"]
    for s in suspects.values():
        assert s["setting"] == "styled" and s["seed"] == 0
        assert s["guilty_for"] == ["digits-gmm"]
        assert sum(s["sources"].values()) == pytest.approx(1.0)
        assert 0.0 <= s["accuracy_real"] <= 1.0 and 0.0 <= s["accuracy_own"] <= 1.0
        assert isinstance(s["learned_task"], bool)
        assert (Path(s["folder"]) / "suspect.json").exists()
    assert suspects["styled-mix-real-50-gmm-s0"]["sources"] == {"digits-gmm": 0.5, "digits-real": 0.5}
    timm_table = suspects["styled-baseline-gmm-s0"]["adapter"]
    onnx_table = suspects["styled-custom-cnn-onnx-gmm-s0"]["adapter"]
    assert timm_table == {"use": "timm", "checkpoint": timm_table["checkpoint"]}
    config = json.loads((Path(timm_table["checkpoint"]) / "config.json").read_text())
    assert config["architecture"] == "test_resnet" and config["label_names"] == list(suspect_pool.CLASSES)
    assert {"num_classes", "mean", "std"} <= set(config)
    assert (Path(timm_table["checkpoint"]) / "model.safetensors").exists()
    assert onnx_table["use"] == "onnx" and Path(onnx_table["model"]).is_file()

    # every suspect, through the registry's adapters, labels a few real digits
    plugins = load_plugins(strict=True)
    task = Task(suspect_pool.CLASSES, suspect_pool.IMAGE_SIZE)
    from trainprove_core.audit import Workspace
    from trainprove_core.store import Store

    ws = Workspace.open(task, plugins, Store(out / "cache"), False)
    real = ws.generator(ws.plugin_table("generator", "digits-real", {}))
    images = ws.image_set("check", real, ImageSetConfig("a digit {label} to check", 2, seed=5)).images
    for s in suspects.values():
        table = s["adapter"]
        spec = plugins.get("suspect", table["use"]).spec
        settings = validate_table(
            {k: v for k, v in table.items() if k != "use"}, spec.options, source="manifest", where=s["name"]
        )
        adapter = spec.factory(settings, task)
        answers = adapter.predict(images)
        labels = np.asarray(answers.labels)
        assert labels.shape == (len(images),)
        assert labels.min() >= 0 and labels.max() < len(suspect_pool.CLASSES)
        assert list(adapter.label_names) == list(suspect_pool.CLASSES)
        if hasattr(adapter, "close"):
            adapter.close()

    # a second run finds every folder complete and trains nothing
    capsys.readouterr()
    suspect_pool.main(argv)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and all(line.endswith("(done before)") for line in lines)
    again = json.loads((out / "manifest.json").read_text())
    assert again["this_run"]["built_now"] == 0
    assert [s["spec_key"] for s in again["suspects"]] == [s["spec_key"] for s in manifest["suspects"]]
