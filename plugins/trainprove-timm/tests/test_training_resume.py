"""Training resumes: a shadow model's training killed with SIGKILL right after a checkpoint continues from
that epoch on the next run and ends with the same weights, byte for byte on the CPU, as a run that was
never interrupted; the checkpoint is gone once the model is committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

TRAIN = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    import trainprove_timm.training as training
    from trainprove_core.audit import Workspace
    from trainprove_core.config import ImageSetConfig
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    store, kill_after = sys.argv[1], int(sys.argv[2])
    save, load = training.save_training_state, training.load_training_state

    def save_then_die(path, tag, epoch, *rest):
        save(path, tag, epoch, *rest)
        print(f"checkpoint at epoch {epoch}", flush=True)
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def load_and_say(*args):
        start = load(*args)
        print(f"starts at epoch {start}", flush=True)
        return start

    training.save_training_state, training.load_training_state = save_then_die, load_and_say
    plugins = load_plugins()
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    ws = Workspace.open(Task(("disc", "ring", "hbar"), 16), plugins, Store(store), show_progress=False)
    images = ws.image_set(
        "shadow", ws.generator(ws.plugin_table("generator", "shapes", {})), ImageSetConfig("a {label}", 30, 0)
    )
    recipe = {"arch": "test_resnet", "epochs": 6, "batch_size": 32, "lr": 2e-3, "hflip": True,
              "crop_scale": [0.6, 1.0], "device": "cpu", "checkpoint_every": 2}
    model_dir, _, _ = ws.trained_model(ws.plugin_table("shadow-trainer", "timm", recipe), images)
    print(f"model {model_dir}", flush=True)
""")


def train(store, kill_after: int = -1) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", TRAIN, str(store), str(kill_after)],
        capture_output=True,
        text=True,
        timeout=None,
    )


@pytest.mark.slow
def test_a_training_killed_after_a_checkpoint_resumes_to_bit_identical_weights(tmp_path):
    killed = train(tmp_path / "store", kill_after=4)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.split("\n")[:3] == [
        "starts at epoch 0",
        "checkpoint at epoch 2",
        "checkpoint at epoch 4",
    ]
    (state,) = (tmp_path / "store" / "checkpoints" / "models").glob("*/training-state.safetensors")
    assert list((tmp_path / "store" / "models").glob(".building-*"))  # what the kill left

    resumed = train(tmp_path / "store")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "starts at epoch 4"  # epochs 5 and 6 only
    whole = train(tmp_path / "fresh")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.splitlines()[:4] == [
        "starts at epoch 0",
        "checkpoint at epoch 2",
        "checkpoint at epoch 4",
        f"model {tmp_path / 'fresh' / 'models' / state.parent.name}",
    ]

    weights = [
        (tmp_path / name / "models" / state.parent.name / "model.safetensors").read_bytes()
        for name in ("store", "fresh")
    ]
    assert weights[0] == weights[1]
    assert not state.parent.exists()  # removed once the model was committed
    assert not list((tmp_path / "store" / "models").glob(".building-*"))  # swept: its builder was dead


def test_a_checkpoint_of_another_training_or_a_damaged_one_is_not_resumed(tmp_path, capsys):
    import torch
    from trainprove_timm.training import build_model, load_training_state, save_training_state

    torch.set_num_threads(1)
    model = build_model("test_resnet", 3, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "training-state.safetensors"
    save_training_state(path, {"identity": {"epochs": 6}, "images": 90}, 4, model, optimizer, schedule, gen)
    parts = (model, optimizer, schedule, gen)
    assert load_training_state(path, {"identity": {"epochs": 6}, "images": 90}, *parts) == 4
    assert load_training_state(path, {"identity": {"epochs": 8}, "images": 90}, *parts) == 0  # other settings
    path.write_bytes(path.read_bytes()[:1000])
    assert load_training_state(path, {"identity": {"epochs": 6}, "images": 90}, *parts) == 0
    assert f"ignoring the unreadable checkpoint {path}" in capsys.readouterr().err
