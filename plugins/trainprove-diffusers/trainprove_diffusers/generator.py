"""`DiffusersGenerator`: one of the four backends as a trainprove `Generator`.

Building a generator is cheap: it checks the settings, resolves the model (a directory's hash, or a hub
revision's commit) and computes its identity. The pipelines load on the first `generate`, so an audit whose
image sets are all cached never loads a model.

Image i depends only on request i: its seed drives its own `torch.Generator`, which draws its initial noise
and any noise the scheduler adds, and text embeddings are computed per prompt. A set can therefore be made in
chunks, interrupted and resumed, and comes out the same (up to the floating-point noise of batched GPU
kernels, which varies with the batch's shape, not with its other members' content).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from trainprove_core import GenerationRequest, InputError, threads

from .backends import BACKENDS, Backend
from .loading import resolve_device, resolve_dtype, resolve_source

if TYPE_CHECKING:
    import numpy as np

SAMPLER_VERSION = 1
"""Bumped when this plugin changes how it samples from the same model and settings (part of the identity)."""

MAX_CACHED_PROMPTS = 512
"""Text embeddings kept per generator (T5-XXL's are about 1 MB a prompt; CLIP's about 120 KB)."""

_SAMPLING_KEYS = ("steps", "guidance", "decoder_steps", "decoder_guidance")


class _Pipelines:
    """The loaded pipelines and what was done to speed them up; shared by a generator and its variants."""

    def __init__(self, pipes: list[Any] | None = None) -> None:
        self.pipes = pipes
        self.placed = False
        self.speedups: list[str] = []


class DiffusersGenerator:
    """A diffusers text-to-image pipeline turned into `generate(requests) -> uint8 (N, H, W, 3)`.

    `settings` are the validated `[generator]` table of the backend (see `make_generator` to build them in
    Python). `pipelines`, when given, are already-built pipelines (e.g. made in this process) used instead of
    loading `model`; `model_identity` then stands for the model in the identity.
    """

    def __init__(
        self,
        backend: Backend,
        settings: Mapping[str, Any],
        *,
        pipelines: list[Any] | None = None,
        model_identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.settings = dict(settings)
        backend.check_resolution(self.settings["resolution"])
        self.device = resolve_device(self.settings["device"])
        self.dtype = resolve_dtype(self.settings["dtype"], self.device, backend.defaults.gpu_dtype)
        if self.settings["cpu_offload"] and not self.device.startswith("cuda"):
            raise InputError(f"cpu_offload = true needs a CUDA device; device resolved to {self.device!r}")
        if pipelines is None:
            self.sources = {
                key: resolve_source(self.settings[key], self.settings[revision], key)
                for key, revision in backend.sources_settings
            }
            model_identity = {key: source.identity() for key, source in self.sources.items()}
        elif model_identity is None:
            raise ValueError("model_identity is required with pipelines")
        self._model_identity = dict(model_identity)
        self._loaded = _Pipelines(pipelines)
        self._embeds: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # ---- the Generator protocol -------------------------------------------------------------------------

    @property
    def native_size(self) -> int:
        return self.settings["resolution"]

    @property
    def batch_size(self) -> int:
        return self.settings["batch_size"]

    @property
    def identity(self) -> dict[str, Any]:
        """Changes whenever the images would: the model, the sampling settings, the dtype, the weight
        variant, diffusers' version and this plugin's sampler version. Device, batch size, offloading and
        compilation are left out: they change nothing but rounding noise."""
        return {
            "generator": self.backend.name,
            "model": self._model_identity,
            "sampling": self.backend.sampling_identity(self.settings),
            "dtype": self.dtype,
            "variant": self.settings["variant"],
            "diffusers": metadata.version("diffusers"),
            "sampler_version": SAMPLER_VERSION,
        }

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        """uint8 RGB images (N, H, W, 3) at `native_size`, image i made from `requests[i].seed` alone."""
        import numpy as np
        import torch

        from .speed import cudnn_autotune

        size = self.native_size
        if not requests:
            return np.zeros((0, size, size, 3), dtype=np.uint8)
        pipes = self.pipelines()
        static = "torch.compile" in self._loaded.speedups
        batches = []
        # On the CPU: the cores the load leaves idle (trainprove_core.threads); on a GPU, torch's own.
        n = 0 if self.device == "cpu" else torch.get_num_threads()
        with torch.no_grad(), cudnn_autotune(), threads.torch_threads(n, "generation"):
            for start in range(0, len(requests), self.batch_size):
                chunk = list(requests[start : start + self.batch_size])
                # A compiled model recompiles for every new batch shape: pad the last batch with copies
                # (their own seeds, so the real images are untouched) and drop them afterwards.
                padded = chunk + [chunk[-1]] * (self.batch_size - len(chunk)) if static else chunk
                embeds = self._embeddings(pipes, [r.prompt for r in padded])
                generators = [torch.Generator("cpu").manual_seed(int(r.seed)) for r in padded]
                images = self.backend.sample(pipes, embeds, generators, self.settings)
                batches.append(_to_uint8(images[: len(chunk)]))
        out = np.concatenate(batches)
        if out.shape != (len(requests), size, size, 3):
            raise InputError(
                f"{self.backend.name} made images of shape {out.shape[1:]} for resolution = {size}; "
                "the model's own size constraints differ from the setting"
            )
        return out

    # ---- beyond the protocol ----------------------------------------------------------------------------

    @property
    def speedups(self) -> list[str]:
        """What `speed.py` applied when the pipelines were placed (empty on the CPU or before loading)."""
        return list(self._loaded.speedups)

    def pipelines(self) -> list[Any]:
        """The loaded pipelines on their device (loading them on first use)."""
        if self._loaded.pipes is None:
            self._loaded.pipes = self.backend.load(self.sources, self.settings, self.dtype)
        if not self._loaded.placed:
            self._place(self._loaded.pipes)
            self._loaded.placed = True
        return self._loaded.pipes

    def variant(self, **sampling: Any) -> DiffusersGenerator:
        """The same model with other sampling settings (steps, guidance, decoder_steps, decoder_guidance),
        sharing the loaded pipelines: the paper's suspect recipe draws a guidance scale per class."""
        unknown = set(sampling) - set(_SAMPLING_KEYS) or set(sampling) - set(self.settings)
        if unknown:
            raise ValueError(
                f"variant() takes {', '.join(k for k in _SAMPLING_KEYS if k in self.settings)}; "
                f"not {', '.join(sorted(unknown))}"
            )
        other = copy.copy(self)
        other.settings = {**self.settings, **sampling}
        other._embeds = OrderedDict()
        return other

    def _place(self, pipes: list[Any]) -> None:
        import torch

        from .speed import speed_up

        # Sampling is inference: dropout off (from_pretrained does this; pipelines built in code need it).
        for pipe in pipes:
            for component in pipe.components.values():
                if isinstance(component, torch.nn.Module):
                    component.eval()
        if self.settings["cpu_offload"]:
            try:
                for pipe in pipes:
                    pipe.enable_model_cpu_offload(device=self.device)
            except ImportError as exc:
                raise InputError(f"cpu_offload = true needs the accelerate package ({exc})") from exc
        else:
            for pipe in pipes:
                pipe.to(self.device)
        made = self.backend.output_size(pipes, self.native_size)
        if made != self.native_size:
            raise InputError(
                f"resolution = {self.native_size}: this {self.backend.name} model makes {made} px images "
                "at that setting; choose a resolution it makes exactly"
            )
        # Offloading moves modules between devices at every call, which compiled graphs cannot follow.
        if self.device.startswith("cuda") and not self.settings["cpu_offload"]:
            self._loaded.speedups = speed_up(
                self.backend.conv_nets(pipes),
                self.backend.compiled_modules(pipes),
                compile=self.settings["compile"],
            )

    def _embeddings(self, pipes: list[Any], prompts: list[str]) -> dict[str, Any]:
        import torch

        missing = list(dict.fromkeys(p for p in prompts if p not in self._embeds))
        if missing:
            encoded = self.backend.encode(pipes, missing, self.settings)
            for i, prompt in enumerate(missing):
                self._embeds[prompt] = {k: v[i : i + 1].clone() for k, v in encoded.items()}
        batch = {k: torch.cat([self._embeds[p][k] for p in prompts]) for k in self._embeds[prompts[0]]}
        for prompt in prompts:
            self._embeds.move_to_end(prompt)
        while len(self._embeds) > MAX_CACHED_PROMPTS:
            self._embeds.popitem(last=False)
        return batch


def _to_uint8(images: Any) -> np.ndarray:
    """(N, 3, H, W) floats in [0, 1] to (N, H, W, 3) uint8, rounded as diffusers' own PIL conversion."""
    import torch

    out = images.float().mul(255).round().clamp(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


def settings_for(name: str, **settings: Any) -> dict[str, Any]:
    """Keyword settings of generator `name`, validated and defaulted as an audit file's `[generator]`
    table is."""
    from trainprove_core import validate_table

    return validate_table(
        settings, BACKENDS[name].options(), source="<python>", where="generator", owner=name
    )


def make_generator(name: str, **settings: Any) -> DiffusersGenerator:
    """Build generator `name` from keyword settings, e.g. `make_generator("latent-consistency",
    model="./lcm", steps=8)`."""
    return DiffusersGenerator(BACKENDS[name], settings_for(name, **settings))
