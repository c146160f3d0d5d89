"""Loading timm checkpoints safely, and asking them for labels.

A checkpoint is a directory in timm's `save_pretrained` layout (config.json + model.safetensors), which is
also what the timm shadow trainer writes, or a bare weights file. Torch files are read with
`weights_only=True`: tensors only, no pickled code is ever run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainprove_core.errors import InputError
from trainprove_core.records import Answers, QueryCost
from trainprove_core.task import Task

from . import __version__

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")


def pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"device {name!r} is not a device torch knows: {exc}") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def _weights_file(checkpoint: Path) -> Path:
    if not checkpoint.exists():
        raise InputError(f"key 'checkpoint': the checkpoint {checkpoint} does not exist")
    if checkpoint.is_file():
        return checkpoint
    for name in WEIGHT_FILES:
        if (checkpoint / name).exists():
            return checkpoint / name
    raise InputError(f"key 'checkpoint': the directory {checkpoint} holds none of {', '.join(WEIGHT_FILES)}")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a torch file with weights_only=True."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every reader error means the same thing to the user
        raise InputError(
            f"checkpoint {path} could not be read as weights ({type(exc).__name__}: {exc}); expected a "
            "safetensors file or a torch file of tensors only"
        ) from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"checkpoint {path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def build_model(arch: str, num_classes: int, image_size: int) -> torch.nn.Module:
    """A randomly initialised timm model; transformers are told the image size, others ignore it."""
    import timm

    if not timm.is_model(arch):
        raise InputError(f"timm has no architecture {arch!r}")
    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, img_size=image_size)
    except TypeError:  # convolutional models take any size and have no img_size argument
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)


class TimmSuspect:
    """A timm model in this process, answering labels and probabilities."""

    returns = "probabilities"
    cost = QueryCost(remote=False, budget=None)

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        identity: Mapping[str, Any],
        label_names: Sequence[str] | None,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        device: torch.device,
    ) -> None:
        self.model = model.to(device).eval()
        self.identity = dict(identity)
        self.label_names = list(label_names) if label_names is not None else None
        self.batch_size = batch_size
        self.device = device
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], task: Task) -> TimmSuspect:
        checkpoint = Path(settings["checkpoint"])
        weights = _weights_file(checkpoint)
        config = _read_config(checkpoint if checkpoint.is_dir() else checkpoint.parent)
        arch = settings.get("arch") or config.get("architecture") or config.get("arch")
        if not arch:
            raise InputError(f"checkpoint {checkpoint}: no `arch` given and no config.json naming one")
        label_names = settings.get("label_names") or config.get("label_names")
        pretrained_cfg = config.get("pretrained_cfg", {})
        mean = settings.get("mean") or config.get("mean") or pretrained_cfg.get("mean") or [0.5, 0.5, 0.5]
        std = settings.get("std") or config.get("std") or pretrained_cfg.get("std") or [0.5, 0.5, 0.5]
        num_classes = len(label_names) if label_names else config.get("num_classes", task.num_classes)
        state = load_state_dict(weights)
        model = build_model(arch, num_classes, task.image_size)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[:4]
            raise InputError(
                f"checkpoint {weights} does not fit timm architecture {arch!r} with {num_classes} classes: "
                + " ".join(line.strip() for line in first)
            ) from None
        identity = {
            "adapter": "timm",
            "plugin_version": __version__,
            "arch": arch,
            "weights_sha256": file_sha256(weights),
            "mean": list(mean),
            "std": list(std),
        }
        return cls(
            model,
            identity=identity,
            label_names=label_names,
            mean=mean,
            std=std,
            batch_size=settings["batch_size"],
            device=pick_device(settings["device"]),
        )

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> Answers:
        probs = []
        for start in range(0, len(images), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size]))
            x = x.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - self._mean) / self._std
            probs.append(torch.softmax(self.model(x).float(), dim=1).cpu())
        p = torch.cat(probs).numpy()
        return Answers(labels=p.argmax(axis=1), probabilities=p)
