"""Entry point: registers the embedded generators of both worlds (digits, fashion).

This module is imported whenever trainprove starts, so it imports nothing heavy: torch, diffusers and
scikit-learn are loaded by the factories, when an audit actually uses a generator.

Every generative model ships twice: trained on the digits drawn in its own house style (the default,
`house_style = true`) and trained on the plain digits (`house_style = false`, the `--hard` demo, where
the generators are so alike that label-only TrainProVe cannot tell them apart). The fashion world's
weights ship too; only `fashion-real` needs the Fashion-MNIST files (checked when it is built).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trainprove_core import Generator, GeneratorSpec, Option, hookimpl, torch_device

from . import HOUSE_STYLES
from .worlds import DIGITS, FASHION, World, world_of

# The fashion data's locations, for the help text (fashion.py itself imports numpy: read it lazily).
ENV = "TRAINPROVE_FASHION_MNIST"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

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
    help="use the weights trained on this generator's own house style (false: trained on plain images)",
)
CONDITIONING = " Conditioned on the class index ({}, in order); prompts are ignored."
CLASSES = DIGITS.classes
"""The task's classes the digit generators draw, in index order (they are conditioned on the index)."""
FASHION_CLASSES = FASHION.classes
"""The fashion generators' classes: Fashion-MNIST's ten, in its label order."""
DATA_DIR = Option(
    "data_dir",
    "str",
    "",
    help=f"folder of Fashion-MNIST's four IDX files [default: ${ENV}, else {DEBIAN_DIR}]",
)


def _style(name: str) -> str:
    return f" House style: {HOUSE_STYLES[name]}." + CONDITIONING.format(world_of(name).what)


def _diffusion(name: str) -> Callable[[Mapping[str, Any]], Generator]:
    def factory(settings: Mapping[str, Any]) -> Generator:
        from .diffusion import CARDS, DiffusionGenerator

        return DiffusionGenerator(
            CARDS[name],
            house_style=settings["house_style"],
            steps=settings["steps"],
            guidance=settings.get("guidance"),
            device=settings["device"],
            batch_size=settings["batch_size"],
        )

    return factory


def _vae(world: World) -> Callable[[Mapping[str, Any]], Generator]:
    def factory(settings: Mapping[str, Any]) -> Generator:
        from .samplers import VAEGenerator

        return VAEGenerator(
            house_style=settings["house_style"],
            temperature=settings["temperature"],
            device=settings["device"],
            batch_size=settings["batch_size"],
            world=world,
        )

    return factory


def _gmm(world: World) -> Callable[[Mapping[str, Any]], Generator]:
    def factory(settings: Mapping[str, Any]) -> Generator:
        from .gmm import GMMGenerator

        return GMMGenerator(
            house_style=settings["house_style"], batch_size=settings["batch_size"], world=world
        )

    return factory


def _gan(world: World) -> Callable[[Mapping[str, Any]], Generator]:
    def factory(settings: Mapping[str, Any]) -> Generator:
        from .samplers import GANGenerator

        return GANGenerator(
            house_style=settings["house_style"],
            device=settings["device"],
            batch_size=settings["batch_size"],
            world=world,
        )

    return factory


def _real(settings: Mapping[str, Any]) -> Generator:
    from .real import RealDigits

    return RealDigits(batch_size=settings["batch_size"])


def _real_fashion(settings: Mapping[str, Any]) -> Generator:
    from .real import RealFashion

    return RealFashion(batch_size=settings["batch_size"], data_dir=settings["data_dir"])


def _specs(world: World) -> list[GeneratorSpec]:
    """The world's five generative models, each as `<world>-<kind>`."""
    what = "8x8 digits" if world is DIGITS else f"{world.size}x{world.size} RGB Fashion-MNIST"
    return [
        GeneratorSpec(
            world.model("ddpm"),
            _diffusion(world.model("ddpm")),
            f"{what}: diffusers UNet2DModel, linear schedule, DDIM sampling." + _style(world.model("ddpm")),
            (
                Option("steps", "int", 10, min=1, max=1000, help="DDIM steps (eta = 0)"),
                DEVICE,
                BATCH_SIZE,
                HOUSE_STYLE,
            ),
            world.classes,
        ),
        GeneratorSpec(
            world.model("cfg"),
            _diffusion(world.model("cfg")),
            f"{what}: diffusers UNet2DModel, cosine schedule, v prediction, DPM-Solver++ with "
            "classifier-free guidance." + _style(world.model("cfg")),
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
            world.classes,
        ),
        GeneratorSpec(
            world.model("vae"),
            _vae(world),
            f"{what}: conditional VAE (torch MLPs), decoder mean." + _style(world.model("vae")),
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
            world.classes,
        ),
        GeneratorSpec(
            world.model("gmm"),
            _gmm(world),
            f"{what}: PCA + per-class Gaussian mixture (numpy)." + _style(world.model("gmm")),
            (BATCH_SIZE, HOUSE_STYLE),
            world.classes,
        ),
        GeneratorSpec(
            world.model("gan"),
            _gan(world),
            f"{what}: conditional GAN (torch MLPs), EMA generator." + _style(world.model("gan")),
            (DEVICE, BATCH_SIZE, HOUSE_STYLE),
            world.classes,
        ),
    ]


@hookimpl
def trainprove_generators() -> list[GeneratorSpec]:
    return [
        *_specs(DIGITS),
        GeneratorSpec(
            "digits-real",
            _real,
            "8x8 digits: the real scikit-learn digits of the class, drawn by seed (not a generative "
            "model: the real-data source for suspects and negative controls)."
            + CONDITIONING.format(DIGITS.what),
            (BATCH_SIZE,),
            CLASSES,
        ),
        *_specs(FASHION),
        GeneratorSpec(
            "fashion-real",
            _real_fashion,
            "16x16 Fashion-MNIST: the real test-split images of the class (28 px area-averaged to 16, grey), "
            "drawn by seed (not a generative model: the real-data source). Needs Debian's "
            "dataset-fashion-mnist or the IDX files in data_dir." + CONDITIONING.format(FASHION.what),
            (BATCH_SIZE, DATA_DIR),
            FASHION_CLASSES,
        ),
    ]
