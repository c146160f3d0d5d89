"""Loading timm checkpoints safely, and asking them for labels.

A checkpoint is a directory in timm's `save_pretrained` layout (config.json + model.safetensors), which is
also what the timm shadow trainer writes, or a bare weights file. Torch files are read with
`weights_only=True`: tensors only, no pickled code is ever run.

An adapter is cheap to build: its identity (architecture, normalisation, the weights' SHA-256, cached by
the core while the file is unchanged: `trainprove_core.identity_cache`) and its label space come from
config.json and the file's metadata. The weights are read, hashed again and loaded on `load()` (which the
audit calls up front for every suspect it will query) or on the first `predict`; a suspect whose answers
are all cached is never loaded, and torch is not imported for it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainprove_core import (
    Answers,
    InputError,
    QueryCost,
    Task,
    cache_directory,
    check_loaded,
    file_sha256,
    read_hashed,
    threads,
)

from . import __version__

if TYPE_CHECKING:
    import torch

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")


def pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu."""
    import torch

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


def load_state_dict(path: Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file, or from a torch file with weights_only=True (`data`: the file's
    bytes, already read)."""
    import torch

    data = path.read_bytes() if data is None else data
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            state = load(data)
        else:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
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


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint is, read without loading its weights."""

    weights: Path
    arch: str
    label_names: list[str] | None
    mean: list[float]
    std: list[float]
    num_classes: int
    sha256: str

    @classmethod
    def read(cls, settings: Mapping[str, Any], task: Task) -> Checkpoint:
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
        return cls(
            weights,
            arch,
            list(label_names) if label_names else None,
            list(mean),
            list(std),
            int(num_classes),
            file_sha256(weights),
        )


class TimmSuspect:
    """A timm model in this process, answering labels and probabilities; loaded on `load()` or on the
    first `predict`."""

    returns = "probabilities"
    cost = QueryCost(remote=False, budget=None)

    def __init__(
        self, checkpoint: Checkpoint, task: Task, *, batch_size: int, device: str = "auto", threads: int = 0
    ) -> None:
        self.checkpoint = checkpoint
        self.task = task
        self.label_names = checkpoint.label_names
        self.batch_size = batch_size
        self.device_name = device
        self.threads = threads
        self.identity = {
            "adapter": "timm",
            "plugin_version": __version__,
            "arch": checkpoint.arch,
            "weights_sha256": checkpoint.sha256,
            "mean": checkpoint.mean,
            "std": checkpoint.std,
        }
        self._model: torch.nn.Module | None = None
        self._digests = cache_directory()  # where the weights' hash is refreshed when they are loaded

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], task: Task, lazy: bool = False) -> TimmSuspect:
        """The adapter of an `[[suspect]] use = "timm"` table; loaded now unless `lazy`."""
        suspect = cls(
            Checkpoint.read(settings, task),
            task,
            batch_size=settings["batch_size"],
            threads=settings.get("threads", 0),
            device=settings["device"],
        )
        if not lazy:
            suspect.load()
        return suspect

    def load(self) -> None:
        """Read the weights (hashing the bytes read: they must be the ones the identity names), build the
        architecture and load them; InputError where the checkpoint cannot serve."""
        if self._model is not None:
            return
        import torch

        c = self.checkpoint
        device = pick_device(self.device_name)
        data, digest = read_hashed(c.weights, self._digests)
        check_loaded(c.weights, c.sha256, digest)
        state = load_state_dict(c.weights, data)
        model = build_model(c.arch, c.num_classes, self.task.image_size)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[:4]
            raise InputError(
                f"checkpoint {c.weights} does not fit timm architecture {c.arch!r} with {c.num_classes} "
                "classes: " + " ".join(line.strip() for line in first)
            ) from None
        self.device = device
        self._mean = torch.tensor(c.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(c.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._model = model.to(device).eval()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> torch.nn.Module:
        """The torch module (loaded now if it was not)."""
        self.load()
        assert self._model is not None
        return self._model

    def predict(self, images: np.ndarray) -> Answers:
        import torch

        self.load()
        probs = []
        cpu = self.device.type == "cpu"
        # On the CPU: the cores the load leaves idle (trainprove_core.threads), unless `threads` fixes it.
        with (
            torch.inference_mode(),
            threads.torch_threads(self.threads if cpu else torch.get_num_threads(), "inference"),
        ):
            for start in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[start : start + self.batch_size]))
                x = x.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
                x = (x - self._mean) / self._std
                probs.append(torch.softmax(self.model(x).float(), dim=1).cpu())
        p = torch.cat(probs).numpy()
        return Answers(labels=p.argmax(axis=1), probabilities=p)
