"""`digits-gan` and `fashion-gan`: a small conditional GAN (torch MLPs), on 8x8 digits and on 16x16 RGB
Fashion-MNIST.

The generator maps a latent vector and a one-hot class to an image; the discriminator sees an image and
its one-hot class. Non-saturating GAN loss, Adam (2e-4, betas 0.5/0.999), and the generator's weights
averaged (EMA) for sampling, which steadies a small GAN's output a great deal. An image is the generator's
output at a latent drawn with the request's own seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import NUM_CLASSES
from .samplers import GAN_LATENT as LATENT
from .worlds import DIGITS, FASHION, World

TRAIN_STEPS = {DIGITS.name: 6000, FASHION.name: 6000}


class ConditionalGenerator(nn.Module):
    """(z (N, LATENT), class (N,)) -> image (N, pixels) in [0, 1]."""

    def __init__(self, world: World = DIGITS) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT + NUM_CLASSES, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, world.pixels),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(labels, NUM_CLASSES).to(z.dtype)
        return self.net(torch.cat([z, onehot], dim=1))


class ConditionalDiscriminator(nn.Module):
    """(image (N, pixels), class (N,)) -> logit that the pair is real."""

    def __init__(self, world: World = DIGITS) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(world.pixels + NUM_CLASSES, 256),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.2),
            nn.Linear(256, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(labels, NUM_CLASSES).to(x.dtype)
        return self.net(torch.cat([x, onehot], dim=1)).squeeze(1)


def train(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    log: Callable[[str], None] = print,
    steps: int | None = None,
    world: World = DIGITS,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train `world`'s conditional GAN on `images` ((N, S, S) or (N, S, S, 3), in [0, 1]); deterministic
    for a seed, torch version and thread count. Returns the EMA generator weights and training statistics."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    steps = steps or TRAIN_STEPS[world.name]
    gen, disc = ConditionalGenerator(world), ConditionalDiscriminator(world)
    ema = {k: v.detach().clone() for k, v in gen.state_dict().items()}
    x_all = torch.tensor(images.reshape(len(images), world.pixels), dtype=torch.float32)
    y_all = torch.tensor(labels, dtype=torch.int64)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.functional.binary_cross_entropy_with_logits
    batch = 128
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    d_loss_avg = g_loss_avg = 0.0
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (batch,), generator=rng)
        real, y = x_all[idx], y_all[idx]
        fake_y = torch.randint(0, NUM_CLASSES, (batch,), generator=rng)
        fake = gen(torch.randn(batch, LATENT, generator=rng), fake_y)
        d_loss = bce(disc(real, y), ones) + bce(disc(fake.detach(), fake_y), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = bce(disc(fake, fake_y), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in gen.state_dict().items():
                ema[k].mul_(decay).add_(v, alpha=1 - decay)
        d_loss_avg = 0.98 * d_loss_avg + 0.02 * d_loss.item() if step else d_loss.item()
        g_loss_avg = 0.98 * g_loss_avg + 0.02 * g_loss.item() if step else g_loss.item()
        if (step + 1) % 1000 == 0:
            log(f"  {world.model('gan')} step {step + 1}/{steps} D {d_loss_avg:.3f} G {g_loss_avg:.3f}")
    stats = {
        "train_steps": steps,
        "batch_size": batch,
        "final_d_loss": round(d_loss_avg, 4),
        "final_g_loss": round(g_loss_avg, 4),
    }
    return ema, stats
