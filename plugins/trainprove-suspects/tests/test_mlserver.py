"""A real MLServer (from PyPI) on 127.0.0.1 serving two suspects, each audited twice: once held locally,
once over the Open Inference Protocol v2. The verdicts must not depend on how a suspect is reached.

- `sklearn-flat`: stock mlserver-sklearn serving a scikit-learn logistic regression on flat vectors
  ([-1, 768]); its metadata lists no inputs (MLServer's default), so the table names `input`, `datatype`
  and `layout = "flat"`. Locally it is the same regression as the test kit's `pixel-logistic` adapter.
- `timm-custom`: a custom runtime (`mlserver_runtime/timm_runtime.py`) serving a timm checkpoint on
  normalised NCHW images, its inputs declared in model-settings.json (read from the metadata). Locally it
  is the `timm` adapter on the same checkpoint.

MLServer's gRPC server listens on loopback too (a free port), its metrics server is off, and inference
runs in the server's own process (`parallel_workers = 0`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from trainprove_core.audit import Workspace, run_audit
from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.glyphs import GlyphPlugin, PixelTrainer
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
from trainprove_core.task import Task

MLSERVER = Path(sys.executable).parent / "mlserver"
if importlib.util.find_spec("mlserver_sklearn") is None or not MLSERVER.exists():
    pytest.skip(
        "MLServer is not installed: pip install 'trainprove-suspects[test]' (mlserver, mlserver-sklearn)",
        allow_module_level=True,
    )

CLASSES = ("disc", "ring", "hbar")
SIZE = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flat_regression(weights: Path, path: Path) -> None:
    """The `pixel-logistic` model (grey pixels: channel 0) as a scikit-learn regression on all 768 values of
    an image (H x W x 3, NHWC order, 0-1), the other channels weighted 0: the same logits."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    with np.load(weights) as f:
        coef, intercept = f["coef"], f["intercept"]
    model = LogisticRegression()
    model.coef_ = np.zeros((len(coef), SIZE * SIZE * 3))
    model.coef_[:, 0::3] = coef
    model.intercept_, model.classes_ = intercept, np.arange(len(coef))
    joblib.dump(model, path)


def timm_checkpoint(model, folder: Path) -> None:
    """A timm checkpoint in save_pretrained layout, as the `timm` adapter reads it."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config = {"architecture": "test_resnet", "num_classes": 3, "label_names": list(CLASSES)}
    config["pretrained_cfg"] = {"mean": [0.5] * 3, "std": [0.5] * 3}
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def models(tmp_path_factory, model):
    """The two suspects on disk, a plugin set with the test kit, and a store."""
    root = tmp_path_factory.mktemp("mlserver")
    plugins = load_plugins(strict=True)
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    store = Store(root / "store")
    task = Task(CLASSES, SIZE)
    ws = Workspace.open(task, plugins, store, show_progress=False)
    generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": 0.0}))
    trained_on = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 40, seed=7))
    (root / "pixel").mkdir()
    PixelTrainer().train(trained_on.images, trained_on.labels, task, root / "pixel")
    timm_checkpoint(model, root / "timm")
    return root, plugins, store


@pytest.fixture(scope="module")
def mlserver(models):
    """MLServer serving both models from a repository folder; yields its base URL."""
    root, _, _ = models
    repo = root / "repo"
    (repo / "sklearn-flat").mkdir(parents=True)
    flat_regression(root / "pixel" / "weights.npz", repo / "sklearn-flat" / "model.joblib")
    skl = {"name": "sklearn-flat", "implementation": "mlserver_sklearn.SKLearnModel"}
    (repo / "sklearn-flat" / "model-settings.json").write_text(
        json.dumps({**skl, "parameters": {"uri": "./model.joblib"}})
    )
    (repo / "timm-custom").mkdir()
    shutil.copy(Path(__file__).parent / "mlserver_runtime" / "timm_runtime.py", repo / "timm-custom")
    timm = {
        "name": "timm-custom",
        "implementation": "timm_runtime.TimmRuntime",
        "parameters": {"uri": str(root / "timm")},
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 3, SIZE, SIZE]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}],
    }
    (repo / "timm-custom" / "model-settings.json").write_text(json.dumps(timm))
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_endpoint": None,  # no metrics server
        "parallel_workers": 0,
        "debug": False,
    }
    (repo / "settings.json").write_text(json.dumps(settings))
    log = open(root / "mlserver.log", "wb")  # noqa: SIM115 - closed below, after the server
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [str(MLSERVER), "start", str(repo)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, root / "mlserver.log")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def wait_ready(url: str, server: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"MLServer exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if all(
                httpx.get(f"{url}/v2/models/{m}/ready", timeout=2).status_code == 200
                for m in ("sklearn-flat", "timm-custom")
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"MLServer was not ready within {seconds:g} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_mlserver_verdicts_equal_the_local_models(models, mlserver, tmp_path):
    root, plugins, store = models
    local = [
        {"name": "sklearn-flat", "use": "pixel-logistic", "model_dir": str(root / "pixel")},
        {"name": "timm-custom", "use": "timm", "checkpoint": str(root / "timm"), "device": "cpu"},
    ]
    remote = [
        {
            "name": "sklearn-flat",
            "use": "http",
            "url": mlserver,
            "model": "sklearn-flat",
            "input": "input-0",  # mlserver-sklearn's metadata lists no inputs
            "datatype": "FP32",
            "layout": "flat",
            "output": "predict_proba",
            "output_kind": "probabilities",
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
        },
        {"name": "timm-custom", "use": "http", "url": mlserver, "model": "timm-custom"},
    ]
    document = {
        "task": {"classes": list(CLASSES), "image_size": SIZE},
        "generator": {"use": "shapes", "style": 0.0},
        "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 30, "batch_size": 10},
        "test": [{"use": "trainprove"}, {"use": "trainprove-ent"}],
    }
    reports = {}
    for way, suspects in (("local", local), ("mlserver", remote)):
        config = config_from_dict(
            {**document, "suspect": suspects}, plugins, source=f"{way}.toml", base_dir=tmp_path
        )
        result = run_audit(config, plugins, tmp_path / way, store, show_progress=False, html=False)
        assert not result.errors, result.errors
        reports[way] = result.report

    def decisions(report):
        return {(v["suspect"], v["test"]): v["decision"] for v in report["verdicts"]}

    assert decisions(reports["mlserver"]) == decisions(reports["local"])
    assert len(decisions(reports["local"])) == 4
    for ours, theirs in zip(reports["mlserver"]["suspects"], reports["local"]["suspects"], strict=True):
        assert ours["accuracy"] == theirs["accuracy"], ours["name"]
        assert (ours["queries_sent"], ours["queries_paid"]) == (90, 90)  # JSON: MLServer 1.7 has no binary
