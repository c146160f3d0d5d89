"""The embedded demo's suspects, asked three ways: as the local timm checkpoints, exported to ONNX, and
served over the Open Inference Protocol v2. The verdicts must not depend on how a suspect is reached."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from styles_audit import export_onnx
from trainprove_suspects.serve import create_app, serve

from trainprove_core.audit import Workspace, run_audit
from trainprove_core.config import config_from_dict, validate_table
from trainprove_core.plugins import load_plugins
from trainprove_core.task import Task

pool = pytest.importorskip("trainprove_demo.pool", reason="the demo plugin is not installed")


def decisions(report: dict) -> dict[tuple[str, str], str]:
    return {(v["suspect"], v["test"]): v["decision"] for v in report["verdicts"]}


def remote_tables(suspects, plugins, task, servers, tmp_path):
    """For every suspect of the pool, its `[[suspect]]` tables as an ONNX file and as a v2 endpoint."""
    timm_adapter = plugins.get("suspect", "timm").spec
    onnx_tables, http_tables = {}, {}
    for suspect in suspects:
        settings = validate_table(
            {"checkpoint": str(suspect.checkpoint)}, timm_adapter.options, source="demo", where=suspect.name
        )
        local = timm_adapter.factory(settings, task)  # loaded the way the timm adapter loads it
        module = local.model.to("cpu").eval()
        mean, std = local.identity["mean"], local.identity["std"]
        same = {"name": suspect.name, "mean": mean, "std": std}
        if local.label_names is not None:
            same["label_names"] = list(local.label_names)
        path = str(export_onnx(module, task.image_size, tmp_path / f"{suspect.name}.onnx"))
        onnx_tables[suspect.name] = {**same, "use": "onnx", "model": path, "threads": 1}
        app = create_app(
            module,
            local.label_names or task.classes,
            image_size=task.image_size,
            mean=mean,
            std=std,
            model_name=suspect.name,
        )
        url = servers.enter_context(serve(app))
        http_tables[suspect.name] = {**same, "use": "http", "url": url, "model": suspect.name}
    return {"onnx": onnx_tables, "http": http_tables}


@pytest.mark.slow
def test_demo_verdicts_are_the_same_over_http_and_as_onnx(tmp_path, trainprove_session_store):
    plugins = load_plugins(strict=True)
    store = trainprove_session_store  # the pool the demo's own test builds, if it ran first
    task = Task(pool.CLASSES, pool.IMAGE_SIZE)
    suspects = pool.build_pool(Workspace.open(task, plugins, store, show_progress=False), hard=False)
    with ExitStack() as servers:
        remote = remote_tables(suspects, plugins, task, servers, tmp_path)
        # Two of the four defenders (a diffusion model and the mixture model) keep the suite's time in check;
        # each audit asks all ten suspects, two of them trained on the defender's images.
        for defender in (pool.DEFENDERS[0], pool.DEFENDERS[-1]):
            document = pool.audit_document(defender, suspects, hard=False)
            reports = {}
            for way in ("timm", "onnx", "http"):
                tables = [
                    t if way == "timm" else {**remote[way][t["name"]], "truth": t["truth"]}
                    for t in document["suspect"]
                ]
                config = config_from_dict(
                    {**document, "suspect": tables}, plugins, source=f"{way}.toml", base_dir=tmp_path
                )
                result = run_audit(config, plugins, tmp_path / defender / way, store, show_progress=False)
                assert not result.errors, result.errors
                reports[way] = result.report
            for way in ("onnx", "http"):
                assert decisions(reports[way]) == decisions(reports["timm"]), (defender, way)
                for ours, theirs in zip(reports[way]["suspects"], reports["timm"]["suspects"], strict=True):
                    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=0.005), (defender, way)
