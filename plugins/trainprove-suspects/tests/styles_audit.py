"""Shared by the tests of the one-image request styles: two timm suspects audited held locally and served
by a reference server of a style (`trainprove_suspects.serve_styles`), so that the verdicts can be
compared. Imported by test modules (a plain module, not a conftest: several plugins have one).

The suspects are `test_resnet`s trained for a few epochs on the test kit's `shapes` generator: one on the
defender's own images (style 0), one on the same shapes drawn in another style. The shadow model is
trained the same way, the validation set is 120 images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from trainprove_suspects.serve import serve
from trainprove_suspects.serve_styles import torch_predictor

from trainprove_core.audit import Workspace, run_audit
from trainprove_core.config import ImageSetConfig, config_from_dict, validate_table
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
from trainprove_core.task import Task

CLASSES = ("disc", "ring", "hbar")
SIZE = 16
TRAINING = {
    "arch": "test_resnet",
    "epochs": 6,
    "batch_size": 32,
    "lr": 3e-3,
    "train_seed": 3,
    "hflip": False,
    "crop_scale": [0.7, 1.0],
}
DOCUMENT = {
    "task": {"classes": list(CLASSES), "image_size": SIZE},
    "generator": {"use": "shapes", "style": 0.0},
    "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "timm", **TRAINING},
    "validation": {"prompt": "a photo of a {label}", "per_class": 40, "batch_size": 10},
    "test": [{"use": "trainprove"}, {"use": "trainprove-ent"}],
}
SOURCES = {"same-source": 0.0, "other-style": 1.0}  # suspect name: the `shapes` style it was trained on


class StyleAudits:
    """The plugins (with the test kit), a store, and the suspects' checkpoints."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plugins = load_plugins(strict=True)
        self.plugins.register(GlyphPlugin(), "glyphs", "tests")
        self.store = Store(root / "store")
        self.task = Task(CLASSES, SIZE)
        ws = Workspace.open(self.task, self.plugins, self.store, show_progress=False)
        self.checkpoints = {}
        for seed, (name, style) in enumerate(SOURCES.items()):
            generator = ws.generator(ws.plugin_table("generator", "shapes", {"style": style}))
            images = ws.image_set(
                f"suspect-{name}", generator, ImageSetConfig("an image of a {label}", 40, seed=7 + seed)
            )
            table = ws.plugin_table("shadow-trainer", "timm", {**TRAINING, "train_seed": 11 + seed})
            self.checkpoints[name], _, _ = ws.trained_model(table, images)

    def local_tables(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "use": "timm", "checkpoint": str(path), "device": "cpu"}
            for name, path in self.checkpoints.items()
        ]

    @contextmanager
    def served(self, create_app: Callable[..., Any], **app: Any) -> Iterator[dict[str, str]]:
        """Each suspect behind its own server made by `create_app(predict, classes, **app)`: its URL."""
        timm = self.plugins.get("suspect", "timm").spec
        with ExitStack() as servers:
            urls = {}
            for name, path in self.checkpoints.items():
                settings = validate_table(
                    {"checkpoint": str(path), "device": "cpu"}, timm.options, source="test", where=name
                )
                local = timm.factory(settings, self.task)  # loaded the way the timm adapter loads it
                predict = torch_predictor(
                    local.model.cpu().eval(), local.identity["mean"], local.identity["std"]
                )
                urls[name] = servers.enter_context(
                    serve(create_app(predict, list(local.label_names or CLASSES), **app))
                )
            yield urls

    def audit(self, suspects: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        """The report of the audit of `suspects` (tables) with the shared document."""
        config = config_from_dict(
            {**DOCUMENT, "suspect": suspects}, self.plugins, source=f"{out.name}.toml", base_dir=out
        )
        result = run_audit(config, self.plugins, out, self.store, show_progress=False, html=False)
        assert not result.errors, result.errors
        return result.report


def decisions(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(v["suspect"], v["test"]): v["decision"] for v in report["verdicts"]}


def export_onnx(module: Any, size: int, path: Path) -> Path:
    """`module` (images in, logits out) exported to ONNX at `path` with a dynamic batch, as a user's
    exporter would (TorchScript, weights inside the file)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module.eval(),
            (torch.zeros(2, 3, size, size),),
            str(path),
            input_names=["images"],
            dynamic_axes={"images": {0: "batch"}},
            external_data=False,
            dynamo=False,
        )
    return Path(path)
