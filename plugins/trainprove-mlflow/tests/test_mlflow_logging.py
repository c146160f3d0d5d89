"""Real audits (the test kit's `shapes` generator, a timm shadow and suspect) logged by the installed
plugin, found through its entry point, to a real MLflow store on local files (sqlite + an artifact
folder), read back with MLflow's own client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

mlflow = pytest.importorskip("mlflow")
torch = pytest.importorskip("torch")

from mlflow.tracking import MlflowClient  # noqa: E402

from trainprove_core import DECISIONS  # noqa: E402
from trainprove_core.audit import Workspace, run_audit  # noqa: E402
from trainprove_core.config import ImageSetConfig, config_from_dict  # noqa: E402
from trainprove_core.glyphs import GlyphPlugin  # noqa: E402
from trainprove_core.plugins import load_plugins  # noqa: E402
from trainprove_core.store import Store  # noqa: E402
from trainprove_core.task import Task  # noqa: E402

CLASSES = ("disc", "ring", "hbar")
TRAINING = {"arch": "test_resnet", "epochs": 2, "batch_size": 32, "hflip": False}
DOCUMENT = {
    "task": {"classes": list(CLASSES), "image_size": 16},
    "generator": {"use": "shapes", "style": 0.0},
    "shadow": {"prompt": "a {label}", "per_class": 20, "trainer": "timm", **TRAINING},
    "validation": {"prompt": "a photo of a {label}", "per_class": 20, "batch_size": 10},
    "test": [{"use": "trainprove"}, {"use": "trainprove-ent"}],
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The plugins as installed (the mlflow plugin among them), the test kit's generator, a store, and a
    suspect checkpoint trained on the same shapes in another style."""
    root = tmp_path_factory.mktemp("mlflow-audits")
    plugins = load_plugins(strict=True)
    assert "trainprove_after_audit" in plugins.hooks_of("trainprove-mlflow")
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    store = Store(root / "store")
    ws = Workspace.open(Task(CLASSES, 16), plugins, store, show_progress=False)
    generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": 1.0}))
    images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 20, seed=7))
    checkpoint, _, _ = ws.trained_model(ws.plugin_table("shadow-trainer", "timm", TRAINING), images)

    def audit(name: str) -> dict:
        document = {
            **DOCUMENT,
            "suspect": [{"name": "other-style", "use": "timm", "checkpoint": str(checkpoint)}],
        }
        config = config_from_dict(document, plugins, source=f"{name}.toml", base_dir=root)
        out = root / name
        result = run_audit(config, plugins, out, store, show_progress=False, html=True)
        return result.report

    return root, audit


@pytest.fixture
def tracking(kit, monkeypatch):
    """A local MLflow store (sqlite and an artifact folder) named by MLFLOW_TRACKING_URI."""
    root, _ = kit
    monkeypatch.chdir(root)  # a new experiment's artifacts go to ./mlruns
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "defender")
    return MlflowClient(uri)


def only_run(client, name):
    experiment = client.get_experiment_by_name("defender")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    assert len(runs) == 1
    return runs[0]


def test_an_audit_is_one_run_with_its_file_verdicts_and_reports(kit, tracking, capsys):
    _, audit = kit
    report = audit("vendor-audit")
    assert not report["errors"], report["errors"]
    run = only_run(tracking, "vendor-audit")
    assert run.info.status == "FINISHED"
    assert f"logged the audit as run {run.info.run_id} of experiment 'defender'" in capsys.readouterr().err
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["task.classes"] == json.dumps(list(CLASSES))
    assert params["generator.use"] == "shapes" and params["suspect.other-style.use"] == "timm"
    assert params["test.trainprove-ent.use"] == "trainprove-ent"
    for test in ("trainprove", "trainprove-ent"):
        assert sum(metrics[f"verdicts/{test}/{d}"] for d in DECISIONS) == 1
        verdict = next(v for v in report["verdicts"] if v["test"] == test)
        assert tags[f"verdict/{test}/other-style"] == verdict["decision"]
        if verdict["p_value"] is not None:
            assert metrics[f"p_value/{test}/other-style"] == pytest.approx(verdict["p_value"])
    assert metrics["accuracy/other-style"] == pytest.approx(report["suspects"][0]["accuracy"])
    assert tags["trainprove.generator"] == "shapes"
    artifacts = {a.path for a in tracking.list_artifacts(run.info.run_id, "trainprove")}
    assert artifacts == {
        "trainprove/report.json",
        "trainprove/report.html",
    }  # `trainprove audit` adds audit.toml
    logged = json.loads(
        open(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="trainprove/report.json"
            )
        ).read()
    )
    assert logged["verdicts"] == report["verdicts"]


def test_inside_a_notebook_s_run_the_audit_is_a_nested_run(kit, tracking, monkeypatch):
    _, audit = kit
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_experiment("defender")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the active run alone turns logging on
    with mlflow.start_run(run_name="notebook") as parent:
        audit("in-notebook")
    run = only_run(tracking, "in-notebook")
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_a_store_it_cannot_use_is_one_line_in_the_report_and_the_audit_goes_on(kit, monkeypatch):
    _, audit = kit
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuch-scheme://somewhere")
    report = audit("bad-uri")
    assert report["verdicts"]
    (error,) = report["errors"]
    assert "MLFLOW_TRACKING_URI='nosuch-scheme://somewhere': cannot use this tracking store" in error
    assert "Traceback" not in error


def test_without_a_tracking_uri_nothing_is_logged_and_mlflow_is_not_imported(tmp_path):
    code = (
        "import sys, trainprove_mlflow.plugin as p, trainprove_mlflow.tracking as t; "
        "p.trainprove_after_audit({}, __import__('pathlib').Path('x')); "
        "print(t.enabled(), 'mlflow' in sys.modules)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "False"]
