"""The diffusion generators: class-conditional diffusers `UNet2DModel`s, on 8x8 digits and 16x16 RGB
Fashion-MNIST (`fashion-ddpm`, `fashion-cfg`: the same two designs, on three channels).

- `digits-ddpm`: a two-level UNet, linear noise schedule, epsilon prediction, sampled with DDIM (eta = 0,
  so an image is a deterministic function of its own initial noise).
- `digits-cfg`: a three-level UNet, cosine ("squaredcos_cap_v2") schedule, v prediction, trained with
  15% of labels replaced by a null class, and sampled with DPM-Solver++ (2nd order, deterministic) and
  classifier-free guidance on the predicted v: v = v_uncond + guidance * (v_cond - v_uncond).

Images are scaled to [-1, 1] for the models. Both are trained by `train` below (called by
`train_generators.py`) and run by `DiffusionGenerator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import HOUSE_STYLES
from .base import NUM_CLASSES, TorchGenerator, channels_first, channels_last, in_fixed_batches, seeded_normal
from .weights import locate
from .worlds import DIGITS, FASHION, World

if TYPE_CHECKING:  # torch and diffusers are imported where a model is built: see `TorchGenerator`
    import torch

NULL_CLASS = NUM_CLASSES
"""The class index that means "no class" for the guided model (its embedding is learnt on dropped labels)."""


@dataclass(frozen=True)
class DiffusionCard:
    """Everything that defines one diffusion generator: network, noise schedule, sampler, training."""

    name: str
    style: str
    unet: dict[str, Any]
    schedule: dict[str, Any]
    sampler: str
    guided: bool
    train_steps: int
    learning_rate: float = 2e-3
    label_dropout: float = 0.0
    sampler_options: dict[str, Any] = field(default_factory=dict)
    world: World = DIGITS


def _unet(channels: tuple[int, ...], num_class_embeds: int, world: World = DIGITS) -> dict[str, Any]:
    return {
        "sample_size": world.size,
        "in_channels": world.channels,
        "out_channels": world.channels,
        "block_out_channels": channels,
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D",) * len(channels),
        "up_block_types": ("UpBlock2D",) * len(channels),
        "norm_num_groups": 8,
        # Attention at 2x2 or 4x4 adds cost and nothing an 8x8 digit needs.
        "add_attention": False,
        "num_class_embeds": num_class_embeds,
    }


DDPM = DiffusionCard(
    name="digits-ddpm",
    style=HOUSE_STYLES["digits-ddpm"],
    unet=_unet((16, 32), NUM_CLASSES),
    schedule={"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": "epsilon"},
    sampler="ddim",
    guided=False,
    train_steps=2000,
)
CFG = DiffusionCard(
    name="digits-cfg",
    style=HOUSE_STYLES["digits-cfg"],
    unet=_unet((8, 16, 32), NUM_CLASSES + 1),
    schedule={
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "v_prediction",
    },
    sampler="dpmsolver++",
    guided=True,
    train_steps=2000,
    label_dropout=0.15,
    sampler_options={"algorithm_type": "dpmsolver++", "solver_order": 2},
)
FASHION_DDPM = DiffusionCard(
    name="fashion-ddpm",
    style=HOUSE_STYLES["fashion-ddpm"],
    unet=_unet((16, 32), NUM_CLASSES, FASHION),
    schedule=DDPM.schedule,
    sampler="ddim",
    guided=False,
    train_steps=1500,
    world=FASHION,
)
FASHION_CFG = DiffusionCard(
    name="fashion-cfg",
    style=HOUSE_STYLES["fashion-cfg"],
    unet=_unet((8, 16, 32), NUM_CLASSES + 1, FASHION),
    schedule=CFG.schedule,
    sampler="dpmsolver++",
    guided=True,
    train_steps=1500,
    label_dropout=0.15,
    sampler_options=CFG.sampler_options,
    world=FASHION,
)
CARDS = {card.name: card for card in (DDPM, CFG, FASHION_DDPM, FASHION_CFG)}


SCHEDULERS = {"ddim": "DDIMScheduler", "dpmsolver++": "DPMSolverMultistepScheduler"}
"""The diffusers scheduler class of each sampler."""


def build_unet(card: DiffusionCard) -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(**card.unet)


def _sampler(card: DiffusionCard) -> Any:
    import diffusers

    config = diffusers.DDPMScheduler(**card.schedule).config
    return getattr(diffusers, SCHEDULERS[card.sampler]).from_config(config, **card.sampler_options)


def train(
    card: DiffusionCard,
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train `card`'s UNet on `images` ((N, S, S) grey or (N, S, S, 3) RGB, in [0, 1]) with class `labels`;
    deterministic for a given seed, torch version and thread count. Returns the EMA weights and training
    statistics."""
    import torch
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    unet = build_unet(card)
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    schedule = DDPMScheduler(**card.schedule)
    x_all = torch.tensor(channels_first(images) * 2.0 - 1.0, dtype=torch.float32)
    y_all = torch.tensor(labels, dtype=torch.int64)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=card.learning_rate, weight_decay=1e-4)
    warmup = 200

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (card.train_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    batch, running = 128, 0.0
    unet.train()
    for step in range(card.train_steps):
        idx = torch.randint(0, len(x_all), (batch,), generator=rng)
        x0, y = x_all[idx], y_all[idx].clone()
        if card.label_dropout:
            y[torch.rand(batch, generator=rng) < card.label_dropout] = NULL_CLASS
        noise = torch.randn(x0.shape, generator=rng)
        t = torch.randint(0, schedule.config.num_train_timesteps, (batch,), generator=rng)
        noisy = schedule.add_noise(x0, noise, t)
        target = (
            noise if card.schedule["prediction_type"] == "epsilon" else schedule.get_velocity(x0, noise, t)
        )
        loss = torch.nn.functional.mse_loss(unet(noisy, t, class_labels=y).sample, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        # EMA with warm-up (as diffusers' EMAModel): a fixed 0.999 would keep 13% of the random
        # initialisation after 2,000 steps.
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in unet.state_dict().items():
                if v.is_floating_point():
                    ema[k].mul_(decay).add_(v, alpha=1 - decay)
                else:
                    ema[k].copy_(v)
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if (step + 1) % 1000 == 0:
            log(f"  {card.name} step {step + 1}/{card.train_steps} loss {running:.4f}")
    return ema, {"train_steps": card.train_steps, "final_loss": round(running, 5), "batch_size": batch}


class DiffusionGenerator(TorchGenerator):
    """A shipped diffusion generator, sampled with its card's scheduler at `steps` steps."""

    def __init__(
        self,
        card: DiffusionCard,
        *,
        house_style: bool,
        steps: int,
        guidance: float | None,
        device: str,
        batch_size: int,
    ) -> None:
        from importlib.metadata import version

        path, digest = locate(card.name, house_style, ".safetensors")
        self.card, self.steps, self.guidance = card, steps, guidance
        self._weights = path
        sampler = {"scheduler": SCHEDULERS[card.sampler], "steps": steps, **card.schedule}
        if card.sampler == "ddim":
            sampler["eta"] = 0.0
        if card.guided:
            sampler["guidance"] = guidance
        super().__init__(
            card.name,
            batch_size,
            {
                "house_style": card.style if house_style else None,
                "weights_sha256": digest,
                "sampler": sampler,
                "diffusers": version("diffusers"),
            },
            card.world,
            device,
        )

    def _load(self) -> torch.nn.Module:
        """The network, loaded on first use: an audit whose image sets are all cached never imports
        diffusers' models or reads the weights."""
        from safetensors.torch import load_file

        unet = build_unet(self.card)
        unet.load_state_dict(load_file(self._weights))
        return unet.eval().to(self.device)

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        import torch

        world = self.card.world
        noise = seeded_normal(seeds, (world.channels, world.size, world.size))
        with torch.inference_mode():
            x = in_fixed_batches(self._denoise, noise, torch.from_numpy(classes))
        return channels_last(((x + 1.0) / 2.0).clamp(0.0, 1.0).numpy())

    def _denoise(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        import torch

        # A fresh scheduler per call: multistep solvers keep state between steps.
        scheduler = _sampler(self.card)
        scheduler.set_timesteps(self.steps)
        x = noise.to(self.device) * scheduler.init_noise_sigma
        labels = labels.to(self.device)
        if self.card.guided:
            labels = torch.cat([labels, torch.full_like(labels, NULL_CLASS)])
        extra = {"eta": 0.0} if self.card.sampler == "ddim" else {}
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(x, t)
            if self.card.guided:
                out = self.model(torch.cat([model_in, model_in]), t, class_labels=labels).sample
                cond, uncond = out.chunk(2)
                out = uncond + self.guidance * (cond - uncond)
            else:
                out = self.model(model_in, t, class_labels=labels).sample
            x = scheduler.step(out, t, x, **extra).prev_sample
        return x.cpu()
