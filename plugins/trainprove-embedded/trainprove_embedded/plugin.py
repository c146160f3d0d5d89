"""Entry point: registers the embedded digit generators.

This module is imported whenever trainprove starts, so it imports nothing heavy: torch, diffusers and
scikit-learn are loaded by the factories, when an audit actually uses a generator.

Every generative model ships twice: trained on the digits drawn in its own house style (the default,
`house_style = true`) and trained on the plain digits (`house_style = false`, the `--hard` demo, where
the generators are so alike that label-only TrainProVe cannot tell them apart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import Generator, GeneratorSpec, Option, hookimpl, torch_device

from . import HOUSE_STYLES

BATCH_SIZE = Option("batch_size", "int", 512, min=1, max=1_000_000, help="images per generate() call")
DEVICE = Option(
    "device",
    "str",
    "cpu",
    help='torch device, e.g. "cpu" or "cuda" (it must exist on this machine)',
    check=torch_device,
)
HOUSE_STYLE = Option(
    "house_style",
    "bool",
    True,
    help="use the weights trained on this generator's own house style (false: trained on plain digits)",
)
CONDITIONING = " Conditioned on the class index (the digits 0..9, in order); prompts are ignored."
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""The task's classes these generators draw, in index order (they are conditioned on the index)."""


def _style(name: str) -> str:
    return f" House style: {HOUSE_STYLES[name]}." + CONDITIONING


def _ddpm(settings: Mapping[str, Any]) -> Generator:
    from .diffusion import DDPM, DiffusionGenerator

    return DiffusionGenerator(
        DDPM,
        house_style=settings["house_style"],
        steps=settings["steps"],
        guidance=None,
        device=settings["device"],
        batch_size=settings["batch_size"],
    )


def _cfg(settings: Mapping[str, Any]) -> Generator:
    from .diffusion import CFG, DiffusionGenerator

    return DiffusionGenerator(
        CFG,
        house_style=settings["house_style"],
        steps=settings["steps"],
        guidance=settings["guidance"],
        device=settings["device"],
        batch_size=settings["batch_size"],
    )


def _vae(settings: Mapping[str, Any]) -> Generator:
    from .vae import VAEGenerator

    return VAEGenerator(
        house_style=settings["house_style"],
        temperature=settings["temperature"],
        device=settings["device"],
        batch_size=settings["batch_size"],
    )


def _gmm(settings: Mapping[str, Any]) -> Generator:
    from .gmm import GMMGenerator

    return GMMGenerator(house_style=settings["house_style"], batch_size=settings["batch_size"])


def _gan(settings: Mapping[str, Any]) -> Generator:
    from .gan import GANGenerator

    return GANGenerator(
        house_style=settings["house_style"], device=settings["device"], batch_size=settings["batch_size"]
    )


def _real(settings: Mapping[str, Any]) -> Generator:
    from .real import RealDigits

    return RealDigits(batch_size=settings["batch_size"])


@hookimpl
def trainprove_generators() -> list[GeneratorSpec]:
    return [
        GeneratorSpec(
            "digits-ddpm",
            _ddpm,
            "8x8 digits: diffusers UNet2DModel, linear schedule, DDIM sampling." + _style("digits-ddpm"),
            (
                Option("steps", "int", 10, min=1, max=1000, help="DDIM steps (eta = 0)"),
                DEVICE,
                BATCH_SIZE,
                HOUSE_STYLE,
            ),
            CLASSES,
        ),
        GeneratorSpec(
            "digits-cfg",
            _cfg,
            "8x8 digits: diffusers UNet2DModel, cosine schedule, v prediction, DPM-Solver++ with "
            "classifier-free guidance." + _style("digits-cfg"),
            (
                Option("steps", "int", 8, min=1, max=1000, help="DPM-Solver++ steps"),
                Option(
                    "guidance",
                    "float",
                    2.0,
                    min=0,
                    max=100,
                    help="classifier-free guidance scale (1: no guidance)",
                ),
                DEVICE,
                BATCH_SIZE,
                HOUSE_STYLE,
            ),
            CLASSES,
        ),
        GeneratorSpec(
            "digits-vae",
            _vae,
            "8x8 digits: conditional VAE (torch MLPs), decoder mean." + _style("digits-vae"),
            (
                Option(
                    "temperature",
                    "float",
                    1.0,
                    min=0,
                    max=100,
                    exclusive_min=True,
                    help="standard deviation of the latent draws",
                ),
                DEVICE,
                BATCH_SIZE,
                HOUSE_STYLE,
            ),
            CLASSES,
        ),
        GeneratorSpec(
            "digits-gmm",
            _gmm,
            "8x8 digits: PCA + per-class Gaussian mixture (numpy)." + _style("digits-gmm"),
            (BATCH_SIZE, HOUSE_STYLE),
            CLASSES,
        ),
        GeneratorSpec(
            "digits-gan",
            _gan,
            "8x8 digits: conditional GAN (torch MLPs), EMA generator." + _style("digits-gan"),
            (DEVICE, BATCH_SIZE, HOUSE_STYLE),
            CLASSES,
        ),
        GeneratorSpec(
            "digits-real",
            _real,
            "8x8 digits: the real scikit-learn digits of the class, drawn by seed (not a generative "
            "model: the real-data source for suspects and negative controls)." + CONDITIONING,
            (BATCH_SIZE,),
            CLASSES,
        ),
    ]
