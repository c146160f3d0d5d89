"""`digits-vae`: a conditional variational auto-encoder (torch MLPs) on 8x8 digits.

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

from trainprove_core import InputError

from . import HOUSE_STYLES
from .base import NUM_CLASSES, EmbeddedGenerator, in_fixed_batches, seeded_normal, torch_device
from .weights import locate

NAME = "digits-vae"
STYLE = HOUSE_STYLES[NAME]
LATENT = 12
HIDDEN = 256
PIXELS = 64
TRAIN_EPOCHS = 150
BETA = 1.0


class ConditionalVAE(nn.Module):
    """x (N, 64) in [0, 1] and class (N,) -> reconstruction logits, mean and log-variance of z."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(PIXELS + NUM_CLASSES, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, HIDDEN), nn.SiLU()
        )
        self.to_stats = nn.Linear(HIDDEN, 2 * LATENT)
        self.decoder = nn.Sequential(
            nn.Linear(LATENT + NUM_CLASSES, HIDDEN),
            nn.SiLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.SiLU(),
            nn.Linear(HIDDEN, PIXELS),
        )

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean image (N, 64) in [0, 1] for latents z and classes."""
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
    epochs: int = TRAIN_EPOCHS,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the conditional VAE on `images` (N, 8, 8) in [0, 1]; deterministic for a seed, torch version
    and thread count. Loss: binary cross-entropy per pixel (continuous targets) plus BETA * KL."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    model = ConditionalVAE()
    x_all = torch.tensor(images.reshape(len(images), PIXELS), dtype=torch.float32)
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
            logits, mean, log_var = model(x, y, torch.randn(len(x), LATENT, generator=rng))
            recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
            loss = (recon + BETA * kl) / len(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(x)
        loss_value = total / len(x_all)
        if (epoch + 1) % 50 == 0:
            log(f"  {NAME} epoch {epoch + 1}/{epochs} loss {loss_value:.3f}")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, {"train_epochs": epochs, "final_loss": round(loss_value, 4), "batch_size": batch}


class VAEGenerator(EmbeddedGenerator):
    """The shipped conditional VAE: decoder mean at a latent drawn per request seed."""

    def __init__(self, *, house_style: bool, temperature: float, device: str, batch_size: int) -> None:
        from safetensors.torch import load_file

        if temperature <= 0:
            raise InputError(f"[generator] temperature of {NAME} must be positive, not {temperature}")
        path, digest = locate(NAME, house_style, ".safetensors")
        self.temperature = temperature
        self.device = torch_device(device, NAME)
        self.model = ConditionalVAE()
        self.model.load_state_dict(load_file(path))
        self.model.eval().to(self.device)
        super().__init__(
            NAME,
            batch_size,
            {
                "house_style": STYLE if house_style else None,
                "weights_sha256": digest,
                "sampler": {"latent": LATENT, "temperature": temperature, "output": "decoder mean"},
                "device": device,
                "torch": torch.__version__,
            },
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        z = seeded_normal(seeds, (LATENT,)) * self.temperature
        with torch.inference_mode():
            x = in_fixed_batches(self._decode, z, torch.from_numpy(classes))
        return x.reshape(-1, 8, 8).numpy()

    def _decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z.to(self.device), labels.to(self.device)).cpu()
