from __future__ import annotations

from pathlib import Path

import pytest

from trainprove_core.config import ImageSetConfig
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import PluginSet, load_plugins
from trainprove_core.store import Store


@pytest.fixture(autouse=True)
def _one_thread():
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def plugins() -> PluginSet:
    """The installed plugins plus the core's test kit (the `shapes` and `glyphs` generators,
    `pixel-logistic`)."""
    plugin_set = load_plugins(strict=True)
    plugin_set.register(GlyphPlugin(), "glyphs", "tests")
    return plugin_set


@pytest.fixture(scope="session")
def suspect_pool(tmp_path_factory) -> dict[str, Path]:
    """Two timm checkpoints trained through the real trainer: one on the `shapes` source with style 0
    (the defender's), one on style 1 (another source)."""
    import torch

    from trainprove_core.audit import Workspace
    from trainprove_core.task import Task

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pool")
    plugin_set = load_plugins(strict=True)
    plugin_set.register(GlyphPlugin(), "glyphs", "tests")
    task = Task(("disc", "ring", "hbar"), 16)
    ws = Workspace.open(task, plugin_set, Store(root / "store"), show_progress=False)
    out = {}
    for name, style in (("same", 0.0), ("other", 1.0)):
        gen = ws.generator(ws.plugin_table("generator", "shapes", {"style": style}))
        images = ws.image_set("suspect", gen, ImageSetConfig("an image of a {label}", 60, seed=7))
        trainer_table = ws.plugin_table(
            "shadow-trainer",
            "timm",
            {
                "arch": "test_resnet",
                "epochs": 12,
                "batch_size": 64,
                "hflip": False,
                "crop_scale": [0.7, 1.0],
                "train_seed": 5,
            },
        )
        trainer = plugin_set.get("shadow-trainer", "timm").spec.factory(trainer_table.settings)
        trainer.train(images.images, images.labels, task, root / name)
        out[name] = root / name
    return out
