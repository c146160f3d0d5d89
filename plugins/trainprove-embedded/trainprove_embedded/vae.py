"""`digits-vae` and `fashion-vae`: a conditional variational auto-encoder (torch MLPs), on 8x8 digits and
on 16x16 RGB Fashion-MNIST (a narrower network on more pixels: `SHAPES`).

The encoder sees the image and its one-hot class, the decoder a latent vector and the class. An image is
the decoder's mean output for a latent drawn from N(0, temperature^2 I) with the request's own seed:
no pixel noise is added, so VAE images have the soft look of a decoder mean (part of this generator's
signature, like a real model's own rendering).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import NUM_CLASSES
from .samplers import VAE_SHAPES as SHAPES
from .worlds import DIGITS, World

BETA = 1.0


class ConditionalVAE(nn.Module):
    """x (N, pixels) in [0, 1] and class (N,) -> reconstruction logits, mean and log-variance of z."""

    def __init__(self, world: World = DIGITS) -> None:
        super().__init__()
        shape = SHAPES[world.name]
        pixels, hidden, latent = world.pixels, shape["hidden"], shape["latent"]
        self.encoder = nn.Sequential(
            nn.Linear(pixels + NUM_CLASSES, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.to_stats = nn.Linear(hidden, 2 * latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent + NUM_CLASSES, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, pixels),
        )

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean image (N, pixels) in [0, 1] for latents z and classes."""
        onehot = nn.functional.one_hot(labels, NUM_CLASSES).to(z.dtype)
        return torch.sigmoid(self.decoder(torch.cat([z, onehot], dim=1)))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, ...]:
        onehot = nn.functional.one_hot(labels, NUM_CLASSES).to(x.dtype)
        mean, log_var = self.to_stats(self.encoder(torch.cat([x, onehot], dim=1))).chunk(2, dim=1)
        z = mean + noise * torch.exp(0.5 * log_var)
        logits = self.decoder(torch.cat([z, onehot], dim=1))
        return logits, mean, log_var


def train(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    log: Callable[[str], None] = print,
    epochs: int | None = None,
    world: World = DIGITS,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train `world`'s conditional VAE on `images` ((N, S, S) or (N, S, S, 3), in [0, 1]); deterministic
    for a seed, torch version and thread count. Loss: binary cross-entropy per pixel (continuous targets)
    plus BETA * KL."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    model = ConditionalVAE(world)
    epochs = epochs or SHAPES[world.name]["epochs"]
    latent = SHAPES[world.name]["latent"]
    x_all = torch.tensor(images.reshape(len(images), world.pixels), dtype=torch.float32)
    y_all = torch.tensor(labels, dtype=torch.int64)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    batch = 128
    steps_per_epoch = math.ceil(len(x_all) / batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    loss_value = 0.0
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=rng)
        total = 0.0
        for start in range(0, len(x_all), batch):
            idx = order[start : start + batch]
            x, y = x_all[idx], y_all[idx]
            logits, mean, log_var = model(x, y, torch.randn(len(x), latent, generator=rng))
            recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
            loss = (recon + BETA * kl) / len(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(x)
        loss_value = total / len(x_all)
        if (epoch + 1) % max(1, epochs // 3) == 0:
            log(f"  {world.model('vae')} epoch {epoch + 1}/{epochs} loss {loss_value:.3f}")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, {"train_epochs": epochs, "final_loss": round(loss_value, 4), "batch_size": batch}
