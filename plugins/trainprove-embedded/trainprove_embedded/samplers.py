"""The VAE and GAN generators as an audit opens them: light until their first image.

Their networks and training live in `vae.py` and `gan.py`, which import torch; these classes import those
modules only when a model is loaded (`TorchGenerator`), so an audit whose images are all in the store
learns each generator's identity without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trainprove_core import InputError

from . import HOUSE_STYLES
from .base import TorchGenerator, in_fixed_batches, seeded_normal
from .weights import locate
from .worlds import DIGITS, FASHION, World

if TYPE_CHECKING:
    import torch

VAE_SHAPES = {
    DIGITS.name: {"latent": 12, "hidden": 256, "epochs": 150},
    FASHION.name: {"latent": 16, "hidden": 128, "epochs": 12},
}
"""The VAE per world: latent size, hidden width, training epochs (Fashion-MNIST has 33x as many images)."""
GAN_LATENT = 32
"""The GAN's latent size (both worlds)."""


def load_weights(model: Any, path: Any, device: Any) -> Any:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(path))
    return model.eval().to(device)


class LatentGenerator(TorchGenerator):
    """A generator that maps a latent vector drawn with each request's seed, and its class, to an image:
    `_images(z, labels)` gives flat images, run here in micro-batches of fixed size."""

    latent: int

    def _latents(self, seeds: list[int]) -> torch.Tensor:
        return seeded_normal(seeds, (self.latent,))

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = in_fixed_batches(self._images, self._latents(seeds), torch.from_numpy(classes))
        size, channels = self.world.size, self.world.channels
        return x.reshape((-1, size, size) if channels == 1 else (-1, size, size, channels)).numpy()

    def _images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class VAEGenerator(LatentGenerator):
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
        name = world.model("vae")
        if temperature <= 0:
            raise InputError(f"[generator] temperature of {name} must be positive, not {temperature}")
        self._weights, digest = locate(name, house_style, ".safetensors")
        self.temperature = temperature
        self.latent = VAE_SHAPES[world.name]["latent"]
        super().__init__(
            name,
            batch_size,
            {
                "house_style": HOUSE_STYLES[name] if house_style else None,
                "weights_sha256": digest,
                "sampler": {"latent": self.latent, "temperature": temperature, "output": "decoder mean"},
            },
            world,
            device,
        )

    def _load(self) -> Any:
        from .vae import ConditionalVAE

        return load_weights(ConditionalVAE(self.world), self._weights, self.device)

    def _latents(self, seeds: list[int]) -> torch.Tensor:
        return super()._latents(seeds) * self.temperature

    def _images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z.to(self.device), labels.to(self.device)).cpu()


class GANGenerator(LatentGenerator):
    """The shipped conditional GAN: generator output at a latent drawn per request seed."""

    latent = GAN_LATENT

    def __init__(self, *, house_style: bool, device: str, batch_size: int, world: World = DIGITS) -> None:
        name = world.model("gan")
        self._weights, digest = locate(name, house_style, ".safetensors")
        super().__init__(
            name,
            batch_size,
            {
                "house_style": HOUSE_STYLES[name] if house_style else None,
                "weights_sha256": digest,
                "sampler": {"latent": GAN_LATENT, "weights": "EMA"},
            },
            world,
            device,
        )

    def _load(self) -> Any:
        from .gan import ConditionalGenerator

        return load_weights(ConditionalGenerator(self.world), self._weights, self.device)

    def _images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(z.to(self.device), labels.to(self.device)).cpu()
