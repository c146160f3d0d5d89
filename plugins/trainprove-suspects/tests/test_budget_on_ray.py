"""On the Ray executor an http suspect is built again on its worker: it must keep its counts in the
store's ledger, as on the driver, so that a budget holds over runs. Two audits of one suspect (another
validation set each) run on a real local Ray cluster, inside a network namespace with only loopback (as
trainprove-ray's own tests do), against one loopback server that counts what it answered. The executor
is named in the audit file only: nothing here imports another plugin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

CASE = """
import json, sys
from pathlib import Path
import ray, timm, torch
from trainprove_suspects.serve import Faults, create_app, serve
from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store

torch.set_num_threads(1)
root = Path(sys.argv[1])
classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
trainer = {"arch": "test_resnet", "epochs": 1, "batch_size": 32, "hflip": False, "crop_scale": [0.7, 1.0]}
torch.manual_seed(0)
model = timm.create_model("test_resnet", pretrained=False, num_classes=len(classes)).eval()
faults, budget, plugins, store = Faults(), 60, load_plugins(strict=True), Store(root / "store")
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
errors = []
with serve(create_app(model, classes, image_size=16, faults=faults)) as url:
    for seed in (1, 2):  # 40 validation images each: the first fits the budget, the second has 20 left
        doc = {
            "task": {"classes": classes, "image_size": 16},
            "generator": {"use": "digits-gmm"},
            "shadow": {"prompt": "a {label}", "per_class": 4, **trainer},
            "validation": {"prompt": "a photo of a {label}", "per_class": 4, "batch_size": 8, "seed": seed},
            "suspect": [{"name": "api", "use": "http", "url": url, "model": "suspect", "budget": budget,
                         "batch_size": 8, "images_per_request": 4, "retries": 0}],
            "executor": {"use": "ray", "workers": 1},
        }
        result = run_audit(config_from_dict(doc, plugins), plugins, root / f"out{seed}", store, False)
        errors.append(result.errors)
ray.shutdown()
sent = sum(int(line.split()[1]) for log in store.root.glob("ledgers/*/usage.log")
           for line in log.read_text().splitlines() if line.startswith("sent "))
print(json.dumps({"answered": faults.answered, "sent": sent, "errors": errors}))
"""


@pytest.mark.slow
def test_a_remote_suspects_budget_on_ray_counts_what_every_run_sent(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("trainprove_ray")  # the executor, used by name in the audit file
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("`unshare` and `ip` are needed to keep Ray on a loopback-only network")
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a loopback-only network namespace: {probe.stderr.decode().strip()}")
    script = tmp_path / "case.py"
    script.write_text(CASE)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    inner = f"ip link set lo up && exec {sys.executable} {script} {tmp_path}"
    # No wall clock: on a loaded machine the cluster is slow, not wrong; CI's own limit ends a hang.
    result = subprocess.run(["unshare", "-n", "sh", "-c", inner], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # The worker's sends are in the ledger (an upper bound of what the server answered: a request in
    # flight when the suspect stopped may never have been answered).
    assert seen["answered"] <= 60 and seen["answered"] <= seen["sent"] <= 60, seen
    assert seen["errors"][0] == [] and any("over its budget of 60" in e for e in seen["errors"][1]), seen
