"""Entry point: the `timm` shadow trainer and the `timm` suspect adapter.

Imports nothing heavy: torch and timm load when an audit builds one of these.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainprove_core import (
    Option,
    ShadowTrainerSpec,
    SuspectAdapterSpec,
    Task,
    hookimpl,
    per_channel,
    torch_device,
)

DEVICE = Option(
    "device",
    "str",
    "auto",
    help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps ... (it must exist on this machine)",
    check=torch_device,
)


_REGISTERED = re.compile(r"^@register_model\s*\n(?:@.*\n)*def\s+(\w+)", re.M)
_DEPRECATED = re.compile(r"^register_model_deprecations\(__name__,\s*(\{.*?\n\})\)", re.M | re.S)


@functools.cache
def timm_architectures() -> frozenset[str]:
    """The names `timm.is_model` knows, read from timm's sources without importing timm (3 s of torch
    and timm at start-up, for a check): every `@register_model` function of `timm/models/*.py` and every
    deprecated name `register_model_deprecations` maps to a new one. Empty if timm is not installed or
    its sources are laid out otherwise (then the caller asks timm itself)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    names: set[str] = set()
    for source in sorted((Path(spec.submodule_search_locations[0]) / "models").glob("*.py")):
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return frozenset()
        names.update(_REGISTERED.findall(text))
        for table in _DEPRECATED.findall(text):
            try:
                names.update(ast.literal_eval(table))
            except (ValueError, SyntaxError):
                return frozenset()
    return frozenset(names)


def _timm_arch(arch: str, settings: Mapping[str, Any]) -> None:
    """An architecture timm has (auto picks one by image size), checked without importing timm where its
    sources can be read (`timm_architectures`), else by timm."""
    if arch == "auto":
        return
    known = timm_architectures()
    if known:
        if arch.split(".", 1)[0] in known:  # as timm.is_model: a pretrained tag after the dot is ignored
            return
        names = sorted(known)
    else:
        import timm

        if timm.is_model(arch):
            return
        names = timm.list_models()
    import difflib

    close = difflib.get_close_matches(arch, names, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"timm has no architecture {arch!r}{hint} (`timm.list_models()` lists them)")


def _optional_arch(arch: str, settings: Mapping[str, Any]) -> None:
    if arch == "auto":
        raise ValueError("'auto' applies to the trainer; name the checkpoint's architecture or leave it out")
    _timm_arch(arch, settings)


def _crop_scale(scale: list[float], settings: Mapping[str, Any]) -> None:
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"must be two numbers lo, hi with 0 < lo <= hi <= 1 (area fractions), got {scale}")


TRAINER_OPTIONS = (
    Option(
        "arch",
        "str",
        "auto",
        help="timm architecture; auto: resnet18 (the paper's) for images of 32 px and more, else test_resnet",
        check=_timm_arch,
    ),
    Option("epochs", "int", 100, min=1, max=10_000, help="training epochs (the paper: 100)"),
    Option("batch_size", "int", 512, min=1, max=1_000_000, help="batch size (the paper: 512 for CIFAR)"),
    Option(
        "lr", "float", 1e-4, min=0, max=10, exclusive_min=True, help="AdamW learning rate (the paper: 1e-4)"
    ),
    Option("weight_decay", "float", 0.9, min=0, help="AdamW weight decay (the paper: 0.9)"),
    Option(
        "crop_scale",
        "list[float]",
        [0.08, 1.0],
        help="RandomResizedCrop area range lo, hi with 0 < lo <= hi <= 1 (torchvision default)",
        check=_crop_scale,
    ),
    Option(
        "hflip", "bool", True, help="random horizontal flips (the paper: yes; turn off for digits or text)"
    ),
    Option(
        "train_seed",
        "int",
        0,
        max=2**32 - 1,
        help="seed of initialisation, shuffling and augmentation ([shadow] seed is the shadow set's)",
    ),
    DEVICE,
    Option(
        "threads",
        "int",
        1,
        min=1,
        max=1024,
        help="CPU threads of training. On the CPU the weights depend on it (a sum split over more threads "
        "rounds differently), so it is part of the model's identity: one value gives the same weights, bit "
        "for bit, on every executor and machine. Give Ray's cpus_per_training as many",
    ),
    Option(
        "channels_last",
        "bool",
        True,
        help="train in the channels-last memory layout (oneDNN's fast convolutions on the CPU: 1.2 to 1.6 "
        "times faster for the demo's models, bench/training.py); the weights differ in rounding from the "
        "other layout's, so it is part of the model's identity",
    ),
    Option(
        "fused_optimizer",
        "bool",
        True,
        help="AdamW as one fused kernel (torch's fused=True; needs torch 2.4 on the CPU; 1.1 times faster "
        "for the demo's models) instead of a loop over the parameters; part of the model's identity, as it "
        "rounds differently",
    ),
    Option(
        "checkpoint_every",
        "int",
        5,
        min=0,
        help="save the training state every this many epochs, so a killed run resumes there (0: never)",
    ),
)

ADAPTER_OPTIONS = (
    Option(
        "checkpoint",
        "path",
        help="a directory with config.json + model.safetensors (what the timm trainer and timm's "
        "save_pretrained write), or a weights file: .safetensors, or .pt/.pth/.bin (loaded with "
        "weights_only=True; pickled code is never run)",
    ),
    Option(
        "arch",
        "str",
        None,
        help="timm architecture (default: read from the checkpoint's config.json)",
        check=_optional_arch,
    ),
    Option(
        "label_names",
        "list[str]",
        None,
        help="the model's class names in its output order (default: config.json's, else the task's)",
    ),
    Option(
        "mean",
        "list[float]",
        None,
        help="per-channel normalisation mean, R, G, B (default: config.json's, else 0.5)",
        check=per_channel(positive=False),
    ),
    Option(
        "std",
        "list[float]",
        None,
        help="per-channel normalisation std, R, G, B, each above 0 (default: config.json's, else 0.5)",
        check=per_channel(positive=True),
    ),
    Option("batch_size", "int", 256, min=1, max=1_000_000, help="images per forward pass"),
    DEVICE,
    Option(
        "threads",
        "int",
        0,
        min=0,
        help="CPU threads of a forward pass; 0: the cores the machine's load leaves idle, at least 1",
    ),
)


def _trainer(settings: Mapping[str, Any]):
    from .training import TimmShadowTrainer

    kwargs = dict(settings)
    kwargs["seed"] = kwargs.pop("train_seed")  # named apart from [shadow] seed, the set's (the core's key)
    return TimmShadowTrainer(**kwargs)


def _adapter(settings: Mapping[str, Any], task: Task):
    from .model import TimmSuspect

    return TimmSuspect.from_settings(settings, task, lazy=True)  # loaded when the audit needs answers


@hookimpl
def trainprove_shadow_trainers() -> list[ShadowTrainerSpec]:
    return [
        ShadowTrainerSpec(
            "timm", _trainer, "train a timm classifier (AdamW, cosine, crop+flip)", TRAINER_OPTIONS
        )
    ]


@hookimpl
def trainprove_suspect_adapters() -> list[SuspectAdapterSpec]:
    return [
        SuspectAdapterSpec(
            "timm",
            _adapter,
            "a local timm checkpoint (safetensors or weights-only torch file)",
            ADAPTER_OPTIONS,
        )
    ]
