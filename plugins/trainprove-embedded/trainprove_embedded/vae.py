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

from trainprove_core import InputError

from . import HOUSE_STYLES
from .base import NUM_CLASSES, EmbeddedGenerator, in_fixed_batches, seeded_normal, torch_device
from .weights import locate
from .worlds import DIGITS, FASHION, World

BETA = 1.0
SHAPES = {
    DIGITS.name: {"latent": 12, "hidden": 256, "epochs": 150},
    FASHION.name: {"latent": 16, "hidden": 128, "epochs": 12},
}
"""Per world: latent size, hidden width, training epochs (Fashion-MNIST has 33x as many images)."""


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


class VAEGenerator(EmbeddedGenerator):
    """The shipped conditional VAE: decoder mean at a latent drawn per request seed."""

    def __init__(
        self,
        *,
        house_style: bool,
        temperature: float,
        device: str,
        batch_size: int,
        world: World = DIGITS,
    ) -> None:
        from safetensors.torch import load_file

        name = world.model("vae")
        if temperature <= 0:
            raise InputError(f"[generator] temperature of {name} must be positive, not {temperature}")
        path, digest = locate(name, house_style, ".safetensors")
        self.temperature = temperature
        self.latent = SHAPES[world.name]["latent"]
        self.device = torch_device(device, name)
        self.model = ConditionalVAE(world)
        self.model.load_state_dict(load_file(path))
        self.model.eval().to(self.device)
        super().__init__(
            name,
            batch_size,
            {
                "house_style": HOUSE_STYLES[name] if house_style else None,
                "weights_sha256": digest,
                "sampler": {"latent": self.latent, "temperature": temperature, "output": "decoder mean"},
                "device": device,
                "torch": torch.__version__,
            },
            world,
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        z = seeded_normal(seeds, (self.latent,)) * self.temperature
        with torch.inference_mode():
            x = in_fixed_batches(self._decode, z, torch.from_numpy(classes))
        size, channels = self.world.size, self.world.channels
        return x.reshape((-1, size, size) if channels == 1 else (-1, size, size, channels)).numpy()

    def _decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z.to(self.device), labels.to(self.device)).cpu()
