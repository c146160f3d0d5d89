"""Entry point: the `timm` shadow trainer and the `timm` suspect adapter.

Imports nothing heavy: torch and timm load when an audit builds one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import Option, ShadowTrainerSpec, SuspectAdapterSpec
from trainprove_core.task import Task

DEVICE = Option("device", "str", "auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps ...")

TRAINER_OPTIONS = (
    Option(
        "arch",
        "str",
        "auto",
        help="timm architecture; auto: resnet18 (the paper's) for images of 32 px and more, else test_resnet",
    ),
    Option("epochs", "int", 100, min=1, help="training epochs (the paper: 100)"),
    Option("batch_size", "int", 512, min=1, help="batch size (the paper: 512 for CIFAR)"),
    Option("lr", "float", 1e-4, help="AdamW learning rate (the paper: 1e-4)"),
    Option("weight_decay", "float", 0.9, help="AdamW weight decay (the paper: 0.9)"),
    Option(
        "crop_scale", "list[float]", [0.08, 1.0], help="RandomResizedCrop area range (torchvision default)"
    ),
    Option(
        "hflip", "bool", True, help="random horizontal flips (the paper: yes; turn off for digits or text)"
    ),
    Option("seed", "int", 0, help="seed of initialisation, shuffling and augmentation"),
    DEVICE,
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
    Option("arch", "str", None, help="timm architecture (default: read from the checkpoint's config.json)"),
    Option(
        "label_names",
        "list[str]",
        None,
        help="the model's class names in its output order (default: config.json's, else the task's)",
    ),
    Option(
        "mean", "list[float]", None, help="per-channel normalisation mean (default: config.json's, else 0.5)"
    ),
    Option(
        "std", "list[float]", None, help="per-channel normalisation std (default: config.json's, else 0.5)"
    ),
    Option("batch_size", "int", 256, min=1, help="images per forward pass"),
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

    return TimmShadowTrainer(**settings)


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
