"""Training a shadow model with timm, the way the paper does (AdamW, cosine schedule, cross-entropy,
RandomResizedCrop + horizontal flip), and writing it in timm's `save_pretrained` layout. torch is imported
when a model is trained, not when the trainer is built (an audit whose shadow is cached never needs it).

Training resumes: every `checkpoint_every` epochs the whole training state (weights, optimizer and
schedule, the RNG states of torch, numpy, Python and the data-order generator) is saved as one
safetensors file in the `checkpoint_dir` the core passes, so a killed run continues from its last
checkpoint and ends with the same weights, bit for bit on the CPU, as a run never interrupted.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainprove_core import InputError, Task, progress, threads

from . import __version__
from .model import TimmSuspect, build_model, pick_device

if TYPE_CHECKING:
    import torch

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def default_arch(image_size: int) -> str:
    """ResNet-18 (the paper's shadow) for CIFAR-sized images and up; timm's tiny test ResNet below that."""
    return "resnet18" if image_size >= 32 else "test_resnet"


def random_resized_crop(
    x: torch.Tensor, scale: Sequence[float], hflip: bool, gen: torch.Generator
) -> torch.Tensor:
    """RandomResizedCrop (area in `scale`, aspect ratio 3/4..4/3) and optional flips, for a whole batch at
    once with one affine resampling (bilinear), instead of a Python loop over images."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=gen)
    log_ratio = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    ratio = torch.exp(log_ratio)
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - h)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if hflip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class TimmShadowTrainer:
    """Trains a timm classifier on an image set and opens it as a suspect adapter."""

    def __init__(
        self,
        arch: str = "auto",
        epochs: int = 100,
        batch_size: int = 512,
        lr: float = 1e-4,
        weight_decay: float = 0.9,
        crop_scale: Sequence[float] = (0.08, 1.0),
        hflip: bool = True,
        seed: int = 0,
        device: str = "auto",
        checkpoint_every: int = 5,
        threads: int = 1,
        channels_last: bool = True,
        fused_optimizer: bool = True,
    ) -> None:
        if len(crop_scale) != 2 or not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise InputError(f"crop_scale must be two numbers 0 < lo <= hi <= 1, got {list(crop_scale)}")
        self.arch = arch
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.crop_scale = tuple(float(c) for c in crop_scale)
        self.hflip = hflip
        self.seed = seed
        self.device = device
        self.threads = threads
        self.channels_last = channels_last
        self.fused_optimizer = fused_optimizer
        self.checkpoint_every = checkpoint_every  # not in `identity`: it does not change the weights

    @property
    def identity(self) -> dict[str, Any]:
        from importlib.metadata import version  # timm's version without importing timm (and torch)

        return {
            "trainer": "timm",
            "plugin_version": __version__,
            "timm": version("timm"),
            "arch": self.arch,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "crop_scale": list(self.crop_scale),
            "hflip": self.hflip,
            "seed": self.seed,
            "threads": self.threads,
            # Named only when on, so a model trained before these existed keeps its key when they are off.
            **({"channels_last": True} if self.channels_last else {}),
            **({"fused_optimizer": True} if self.fused_optimizer else {}),
        }

    def train(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        task: Task,
        out_dir: Path,
        checkpoint_dir: Path | None = None,
    ) -> None:
        """Train on `images` and write the model to `out_dir`; with `checkpoint_dir`, resume from the
        checkpoint there (if it is of this training) and save one every `checkpoint_every` epochs. On the
        CPU it runs on `threads` threads, whatever the process had set."""
        import torch

        arch = default_arch(task.image_size) if self.arch == "auto" else self.arch
        device = pick_device(self.device)
        # A fixed count (the weights depend on it, and `threads` is part of the model's identity).
        fixed = self.threads if device.type == "cpu" else torch.get_num_threads()
        with threads.torch_threads(fixed, "training"):
            self._train(arch, device, images, labels, task, out_dir, checkpoint_dir)

    def _train(
        self,
        arch: str,
        device: torch.device,
        images: np.ndarray,
        labels: np.ndarray,
        task: Task,
        out_dir: Path,
        checkpoint_dir: Path | None,
    ) -> None:
        import torch
        import torch.nn.functional as F

        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        model = build_model(arch, task.num_classes, task.image_size).to(device, memory_format=layout)
        x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        x_all = ((x_all - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)).to(
            device
        )
        y_all = torch.from_numpy(labels.astype(np.int64)).to(device)
        steps_per_epoch = math.ceil(len(y_all) / self.batch_size)
        optimizer = adamw(model, self.lr, self.weight_decay, self.fused_optimizer)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs * steps_per_epoch)
        model.train()
        bar = progress.current()  # the core's "train model" step; epochs are its units
        bar.set_total(self.epochs, "epoch")
        path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
        tag = {"identity": self.identity, "images": len(y_all), "arch": arch}
        start = load_training_state(path, tag, model, optimizer, schedule, gen) if path else 0
        bar.update(start)
        for epoch in range(start, self.epochs):
            order = torch.randperm(len(y_all), generator=gen).to(device)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                x = random_resized_crop(x_all[idx], self.crop_scale, self.hflip, gen)
                x = x.contiguous(memory_format=layout)
                loss = F.cross_entropy(model(x), y_all[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(idx)
            bar.set_postfix_str(f"loss {total / len(order):.3f}")
            bar.update(1)
            done = epoch + 1
            if path is not None and self.checkpoint_every and done % self.checkpoint_every == 0:
                if done < self.epochs:
                    save_training_state(path, tag, done, model, optimizer, schedule, gen)
        save_checkpoint(model.cpu().eval(), arch, task, out_dir)

    def open(self, model_dir: Path, task: Task) -> TimmSuspect:
        return TimmSuspect.from_settings(
            {
                "checkpoint": str(model_dir),
                "arch": None,
                "label_names": None,
                "mean": None,
                "std": None,
                "batch_size": 512,
                "device": self.device,
            },
            task,
            lazy=True,
        )


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    """AdamW over `model`'s parameters, as one fused kernel where `fused` (torch 2.4 and later on the CPU;
    an `InputError` naming the option on an older torch, before any epoch)."""
    import torch

    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None)
    except RuntimeError as exc:
        raise InputError(
            f"timm trainer: fused_optimizer = true needs torch's fused AdamW on this device (torch 2.4 or "
            f"later on the CPU; this is torch {torch.__version__}: {exc}); set fused_optimizer = false"
        ) from None


def save_checkpoint(model: torch.nn.Module, arch: str, task: Task, out_dir: Path) -> None:
    """Write `model` in timm's save_pretrained layout: config.json + model.safetensors."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "model.safetensors"))
    config = {
        "architecture": arch,
        "num_classes": task.num_classes,
        "label_names": list(task.classes),
        "image_size": task.image_size,
        "pretrained_cfg": {
            "mean": list(MEAN),
            "std": list(STD),
            "input_size": [3, task.image_size, task.image_size],
        },
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


CHECKPOINT = "training-state.safetensors"


def save_training_state(
    path: Path,
    tag: dict[str, Any],
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    gen: torch.Generator,
) -> None:
    """Everything training needs to continue after `epoch` epochs, in one safetensors file (tensors:
    weights, optimizer state, RNG states; metadata: JSON of the rest), written atomically."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.order"] = gen.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(np_keys, dtype=np.uint32).astype(np.int64))
    meta = {
        "tag": tag,
        "epoch": epoch,
        "param_groups": optim["param_groups"],
        "schedule": schedule.state_dict(),
        "numpy": [np_name, int(np_pos), int(np_has_gauss), float(np_gauss)],
        "python": random.getstate(),
    }
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp), metadata={"trainprove": json.dumps(meta, default=list)})
    os.replace(tmp, path)


def load_training_state(
    path: Path,
    tag: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    gen: torch.Generator,
) -> int:
    """Restore the state `save_training_state` wrote and return the epochs already done; 0 (start
    afresh) when there is none, it is of another training, or it cannot be read."""
    import torch
    from safetensors import safe_open

    if not path.exists():
        return 0
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["trainprove"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint only costs the epochs it saved
        print(
            f"timm: ignoring the unreadable checkpoint {path} ({type(exc).__name__}: {exc})", file=sys.stderr
        )
        return 0
    if json.loads(json.dumps(tag, default=list)) != meta["tag"]:
        return 0
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    for group in optimizer.param_groups:  # moments back in their parameter's layout (channels-last)
        for param in group["params"]:
            moments = optimizer.state.get(param, {})
            for name, value in moments.items():
                if value.shape == param.shape and value.stride() != param.stride():
                    moments[name] = torch.empty_like(param).copy_(value)
    schedule.load_state_dict(meta["schedule"])
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.order"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    np_name, np_pos, np_has_gauss, np_gauss = meta["numpy"]
    np.random.set_state(
        (np_name, tensors["rng.numpy"].numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss)
    )
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    print(f"timm: resuming after epoch {meta['epoch']} from the checkpoint {path}", file=sys.stderr)
    return int(meta["epoch"])
