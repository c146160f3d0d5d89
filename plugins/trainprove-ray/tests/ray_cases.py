"""The Ray executor against a real Ray cluster: run by test_ray.py inside a network namespace that has
only loopback (Ray rewrites 127.0.0.1 to the host's address and listens on every interface), never
collected on its own (its name does not start with `test_`).

One local cluster (2 CPUs) for the whole module; real embedded generators and timm models; small audits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trainprove_core.audit import Workspace, run_audit
from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
from trainprove_core.task import Task
from trainprove_core.testing import ExecutorContract

ray = pytest.importorskip("ray")

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TASK = Task(tuple(CLASSES), 16)
TRAINER = {"arch": "test_resnet", "epochs": 2, "batch_size": 32, "hflip": False, "crop_scale": [0.7, 1.0]}
SETTINGS = {"workers": 1}  # the [executor] keys of the Ray runs
RAY = {"use": "ray", **SETTINGS}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    import torch

    torch.set_num_threads(1)
    assert os.environ.get("TRAINPROVE_RAY_NETNS") == "1", "run me through test_ray.py"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(strict=True)


def ray_executor(plugins, **settings):
    from trainprove_core.audit import open_executor

    return open_executor(plugins, "ray", {**SETTINGS, **settings})


class TestRayExecutor(ExecutorContract):
    @pytest.fixture
    def executor_factory(self, plugins):
        return lambda **settings: ray_executor(plugins, **settings)


def suspects(ws: Workspace) -> dict[str, str]:
    """Two timm suspects, trained (through the workspace's executor) on two embedded generators."""
    pairs = []
    for source in ("digits-gmm", "digits-vae"):
        gen = ws.generator(ws.plugin_table("generator", source, {}))
        images = ws.image_set(f"suspect {source}", gen, ImageSetConfig("an image of a {label}", 12, seed=3))
        pairs.append((ws.plugin_table("shadow-trainer", "timm", {**TRAINER, "train_seed": 9}), images))
    made = ws.trained_models(pairs)
    return {"gmm-net": str(made[0][0]), "vae-net": str(made[1][0])}


def audit_doc(pool: dict[str, str], executor: dict) -> dict:
    return {
        "task": {"classes": CLASSES, "image_size": 16},
        "generator": {"use": "digits-gmm"},
        "shadow": {"prompt": "a {label}", "per_class": 12, **TRAINER},
        "validation": {"prompt": "a photo of a {label}", "per_class": 10, "batch_size": 20},
        "suspect": [
            {"name": name, "use": "timm", "checkpoint": path, "batch_size": 25} for name, path in pool.items()
        ],
        "executor": executor,
    }


@pytest.fixture(scope="module")
def local_run(plugins, tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    with Workspace.open(TASK, plugins, Store(root / "store"), show_progress=False) as ws:
        pool = suspects(ws)
    doc = audit_doc(pool, {"use": "local"})
    result = run_audit(config_from_dict(doc, plugins), plugins, root / "out", Store(root / "store"), False)
    return pool, result.report


def test_an_audit_on_ray_gives_the_local_verdicts_hashes_and_query_counts(plugins, local_run, tmp_path):
    local_pool, local = local_run
    store = Store(tmp_path / "store")
    with Workspace.open(TASK, plugins, store, False, "ray", SETTINGS) as ws:
        pool = suspects(ws)  # the suspects trained on Ray workers, written by the driver
        assert ws.work_done.models == 2 and ws.work_done.images == 240
        assert all(not w.endswith(f":{os.getpid()}") for w in ws.work_done.workers)  # not in this process
    for name in pool:
        assert sorted(p.name for p in Path(pool[name]).iterdir()) == sorted(
            p.name for p in Path(local_pool[name]).iterdir()
        )
    doc = audit_doc(pool, RAY)
    report = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out", store, False).report
    assert report["manifest"]["hashes"] == local["manifest"]["hashes"]
    assert [(v["suspect"], v["decision"], v["statistic"]) for v in report["verdicts"]] == [
        (v["suspect"], v["decision"], v["statistic"]) for v in local["verdicts"]
    ]
    assert [s["queries_sent"] for s in report["suspects"]] == [100, 100]  # counted on the driver
    assert report["errors"] == []


def _first_part(store: Store, kind: str, partial: str = "partial-*", timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(store.root.glob(f"{kind}/*.{partial}/*.npz")):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {kind} chunk was stored within {timeout} s")


def test_a_worker_killed_mid_run_costs_only_its_chunk(plugins, tmp_path):
    store = Store(tmp_path / "store")
    cfg = ImageSetConfig(
        "a {label}", 2, seed=11
    )  # 20 images, 10 chunks of 2 (a diffusion model: ~0.3 s each)
    with Workspace.open(TASK, plugins, Store(tmp_path / "local"), False) as ws:
        expected = ws.image_set(
            "reference", ws.generator(ws.plugin_table("generator", "digits-ddpm", {"batch_size": 2})), cfg
        )
    with Workspace.open(TASK, plugins, store, False, "ray", {**SETTINGS, "workers": 2}) as ws:
        gen = ws.generator(ws.plugin_table("generator", "digits-ddpm", {"batch_size": 2}))
        killed = []

        def kill_one() -> None:
            _first_part(store, "image-sets")
            pids = ws.executor.worker_pids()
            os.kill(pids[-1], signal.SIGKILL)
            killed.append((pids[-1], pids))

        killer = threading.Thread(target=kill_one)
        killer.start()
        made = ws.image_set("killed", gen, cfg)
        killer.join()
        pid, before = killed[0]
        seen = {int(w.rsplit(":", 1)[1]) for w in ws.work_done.workers}
        assert pid not in ws.executor.worker_pids()  # the actor was restarted, in a new process ...
        assert seen - set(before), "... which ran the killed worker's chunks again"
        assert ws.work_done.items == 10 and ws.work_done.images == 20  # every chunk stored once
    assert made.key == expected.key
    assert (made.images == expected.images).all() and (made.labels == expected.labels).all()


CHILD = """
import sys
from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
import json
plugins = load_plugins(strict=True)
doc = json.loads(sys.argv[1])
run_audit(config_from_dict(doc, plugins), plugins, sys.argv[2], Store(sys.argv[3]), False)
"""


def test_a_killed_driver_resumes_with_another_executor(plugins, local_run, cluster, tmp_path):
    pool, local = local_run
    store = Store(tmp_path / "store")
    doc = audit_doc(pool, {**RAY, "address": cluster})
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(doc), str(tmp_path / "a"), str(store.root)],
        start_new_session=True,
    )
    try:
        _first_part(store, "answers", "partial-4")  # a suspect's first answers (4 chunks of 25) are stored
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    done_before = len(list(store.root.glob("answers/*.partial-4/*.npz")))
    assert not (tmp_path / "a" / "report.json").exists() and done_before >= 1
    # The same audit resumes on the local executor and keeps what the Ray run stored.
    doc["executor"] = {"use": "local"}
    report = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "b", store, False).report
    assert report["manifest"]["hashes"] == local["manifest"]["hashes"]
    assert [v["decision"] for v in report["verdicts"]] == [v["decision"] for v in local["verdicts"]]
    sent = sum(s["queries_sent"] for s in report["suspects"])
    assert sent < 200, "answers the killed run stored were asked again"
