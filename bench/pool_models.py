"""Models, augmentation and the training loop of the benchmark's suspect pool (bench/suspect_pool.py).

Deliberately *not* the timm shadow trainer's recipe (AdamW, cosine schedule, RandomResizedCrop): the
suspects here are trained by a plain PyTorch loop of their own, SGD with Nesterov momentum and a one-cycle
or step schedule by default, with augmentation written here (integer shifts, affine warps, pixel noise,
cutout), optional label smoothing and mixup. Models are timm architectures (saved in the layout the `timm`
suspect adapter loads) or small torch networks defined here and exported to ONNX (loaded by the `onnx`
adapter).

Everything is seeded: one seed fixes initialisation, batch order, augmentation and mixup draws.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)

# ---- models -------------------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """A plain CNN (not from timm): three conv-BN-ReLU blocks, two of them strided, global average pool."""

    def __init__(self, num_classes: int, width: int = 24) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class PixelMLP(nn.Module):
    """A multi-layer perceptron on the pixels (no convolution at all): the grey ones (`colour` false, the
    digits world, where the three channels are the same grey) or all three channels (the fashion world)."""

    def __init__(self, num_classes: int, image_size: int, hidden: int = 192, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(image_size * image_size * (3 if colour else 1), hidden),
            nn.GELU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, hidden // 2),
            nn.GELU(),
            nn.Linear(hidden // 2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x if self.colour else x.mean(dim=1))


def tiny_vit(num_classes: int, image_size: int) -> nn.Module:
    """timm's VisionTransformer class at a size no registered timm name has: 4x4 patches (16 tokens at
    16 px), width 64, 4 blocks. No registered name fits a 16-pixel image (timm's `test_vit` has 16x16
    patches: a single token), so this one travels as ONNX."""
    from timm.layers import set_fused_attn
    from timm.models.vision_transformer import VisionTransformer

    set_fused_attn(False)  # the explicit softmax(QK^T)V path exports to ONNX everywhere
    return VisionTransformer(
        img_size=image_size,
        patch_size=4,
        num_classes=num_classes,
        embed_dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        global_pool="avg",
        class_token=False,
    )


CUSTOM = {"small-cnn", "pixel-mlp", "tiny-vit"}
COLOUR = False
"""Whether the pixel MLP reads colour: bench/suspect_pool.py sets it for the fashion world."""


def build_model(arch: str, num_classes: int, image_size: int) -> nn.Module:
    """A freshly initialised model. timm names are created exactly as the `timm` adapter re-creates them
    (img_size passed where the architecture takes one), so its weights load strictly."""
    if arch == "small-cnn":
        return SmallCNN(num_classes)
    if arch == "pixel-mlp":
        return PixelMLP(num_classes, image_size, colour=COLOUR)
    if arch == "tiny-vit":
        return tiny_vit(num_classes, image_size)
    import timm

    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, img_size=image_size)
    except TypeError:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes)


# ---- augmentation -------------------------------------------------------------------------------------


def _affine(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def augment(x: torch.Tensor, aug: Mapping[str, Any], gen: torch.Generator) -> torch.Tensor:
    """Augment a batch of images in [0, 1] (background 0, so zero padding is background).

    Keys of `aug` (all optional): `shift` (integer pixels, each axis), `rotate` (degrees, +-), `scale`
    ([lo, hi]), `shear` (+-, as a fraction), `noise` (std of Gaussian pixel noise), `cutout` (side of a
    zeroed square, in pixels, at a random place, with probability 0.5)."""
    n, _, h, w = x.shape
    rotate, shear, scale = aug.get("rotate", 0.0), aug.get("shear", 0.0), aug.get("scale")
    shift = aug.get("shift", 0)
    if rotate or shear or scale:
        ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(rotate)
        sh = (torch.rand(n, generator=gen) * 2 - 1) * shear
        lo, hi = scale or (1.0, 1.0)
        s = lo + torch.rand(n, generator=gen) * (hi - lo)
        cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + sh
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos
        if shift:
            theta[:, :, 2] = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * shift / w)
        x = _affine(x, theta)
    elif shift:
        # integer translations: exact pixel copies (grid points land on pixel centres)
        d = torch.randint(-shift, shift + 1, (n, 2), generator=gen).float()
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2], theta[:, 1, 2] = 2 * d[:, 0] / w, 2 * d[:, 1] / h
        x = _affine(x, theta, mode="nearest")
    if aug.get("noise"):
        x = (x + aug["noise"] * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    if aug.get("cutout"):
        c = int(aug["cutout"])
        ys = torch.randint(0, h - c + 1, (n,), generator=gen)
        xs = torch.randint(0, w - c + 1, (n,), generator=gen)
        keep = torch.rand(n, generator=gen) < 0.5
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        box = (
            (rows >= ys.view(n, 1, 1))
            & (rows < (ys + c).view(n, 1, 1))
            & (cols >= xs.view(n, 1, 1))
            & (cols < (xs + c).view(n, 1, 1))
        )
        x = x * (~(box & ~keep.view(n, 1, 1))).unsqueeze(1)
    return x


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


# ---- training -----------------------------------------------------------------------------------------

TRAIN_DEFAULTS: dict[str, Any] = {
    "arch": "test_resnet",
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "sgd",  # sgd: SGD, momentum 0.9, Nesterov; adamw: AdamW (the ViT)
    "lr": 0.05,
    "weight_decay": 5e-4,
    "schedule": "onecycle",  # onecycle | step (x0.1 at 50% and 75%) | constant
    "label_smoothing": 0.0,
    "mixup": 0.0,  # Beta(alpha, alpha); 0 turns it off
    "aug": {"shift": 2},
}


def lr_factor(schedule: str, total: int):
    """The learning-rate multiplier at each step. onecycle: linear warm-up over the first 25% of steps
    from 0.1, then cosine down to 0; step: 1, then 0.1 from 50% and 0.01 from 75%; constant: 1."""
    warm = max(1, int(0.25 * total))

    def onecycle(step: int) -> float:
        if step < warm:
            return 0.1 + 0.9 * step / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    def step_decay(step: int) -> float:
        return 1.0 if step < 0.5 * total else 0.1 if step < 0.75 * total else 0.01

    factors = {"onecycle": onecycle, "step": step_decay, "constant": lambda _: 1.0}
    if schedule not in factors:
        raise ValueError(f"unknown schedule {schedule!r}")
    return factors[schedule]


def train_classifier(
    images: np.ndarray, labels: np.ndarray, num_classes: int, recipe: Mapping[str, Any], seed: int
) -> nn.Module:
    """Train a classifier on uint8 images with `recipe` (keys of TRAIN_DEFAULTS); return it in eval mode."""
    r = {**TRAIN_DEFAULTS, **recipe}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(r["arch"], num_classes, images.shape[1])
    x_all = to_tensor(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    n, bs = len(y_all), int(r["batch_size"])
    steps_per_epoch = max(1, n // bs) if n >= bs else 1  # drop the ragged last batch (BatchNorm)
    total = steps_per_epoch * int(r["epochs"])
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(("pos_embed", "cls_token")) else decay).append(p)
    groups = [{"params": decay, "weight_decay": r["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if r["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=r["lr"], momentum=0.9, nesterov=True)
    elif r["optimizer"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=r["lr"])
    else:
        raise ValueError(f"unknown optimizer {r['optimizer']!r}")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(r["schedule"], total))
    model.train()
    for _ in range(int(r["epochs"])):
        order = torch.randperm(n, generator=gen)
        for step in range(steps_per_epoch):
            idx = order[step * bs : (step + 1) * bs]
            x = normalise(augment(x_all[idx], r["aug"], gen))
            y = y_all[idx]
            if r["mixup"] > 0:
                lam = float(rng.beta(r["mixup"], r["mixup"]))
                perm = torch.randperm(len(idx), generator=gen)
                out = model(lam * x + (1 - lam) * x[perm])
                loss = lam * F.cross_entropy(out, y, label_smoothing=r["label_smoothing"]) + (
                    1 - lam
                ) * F.cross_entropy(out, y[perm], label_smoothing=r["label_smoothing"])
            else:
                loss = F.cross_entropy(model(x), y, label_smoothing=r["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.inference_mode()
def predict_labels(model: nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    out = []
    for start in range(0, len(images), batch_size):
        out.append(model(normalise(to_tensor(images[start : start + batch_size]))).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


# ---- saving, in the layouts the suspect adapters load ------------------------------------------------


def save_timm(model: nn.Module, arch: str, classes: Sequence[str], image_size: int, out_dir: Path) -> None:
    """config.json {architecture, num_classes, label_names, mean, std} + model.safetensors: the layout the
    `timm` adapter (and timm's save_pretrained) uses."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "model.safetensors"))
    config = {
        "architecture": arch,
        "num_classes": len(classes),
        "label_names": list(classes),
        "mean": list(MEAN),
        "std": list(STD),
        "image_size": image_size,
        "pretrained_cfg": {"mean": list(MEAN), "std": list(STD), "input_size": [3, image_size, image_size]},
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def save_onnx(model: nn.Module, image_size: int, path: Path) -> None:
    """An ONNX file with a float input `images` (N x 3 x S x S, dynamic N) and logits as output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model.eval(),
            (torch.zeros(2, 3, image_size, image_size),),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            external_data=False,
            dynamo=False,
        )
