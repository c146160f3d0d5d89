"""The four diffusion backends: what each loads, the paper's defaults, and one batch of sampling.

A backend knows its pipeline classes and how to drive them from prompt embeddings (computed once per
distinct prompt by the generator) and one seeded `torch.Generator` per image. It always calls the diffusers
pipeline itself, with the pipeline's own scheduler and guidance arithmetic, so its images are the images
plain diffusers makes on the same seeds; speed comes from around the call (see `speed.py`), not from a
reimplemented sampler. This module imports nothing heavy at import time: the plugin's option lists are read
from it when trainprove starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trainprove_core import InputError, Option, torch_device

from .loading import DTYPES, ModelSource, load_from, offline_check, torch_dtype


@dataclass(frozen=True)
class Defaults:
    """The paper's settings for one backend (steps and guidance are the pipelines' own defaults), plus the
    dtype and batch size used on a GPU."""

    model: str
    steps: int
    guidance: float
    resolution: int
    gpu_dtype: str
    batch_size: int


class Backend:
    """One diffusers pipeline family. Subclasses fill in the class attributes and the four steps:
    `load`, `encode`, `sample`, and which modules `speed.py` may rewrite."""

    name: str
    description: str
    defaults: Defaults
    resolution_step: int
    """Resolutions must be multiples of this (the latent grid times the model's own patching)."""
    extra_options: tuple[Option, ...] = ()
    sources_settings: tuple[tuple[str, str], ...] = (("model", "revision"),)
    """(location setting, revision setting) of every model the backend loads."""
    replaced_components: Mapping[str, tuple[str, str]] = {}
    """location setting -> (component, subfolder setting): the component of that pipeline loaded from the
    subfolder instead, when the setting is not empty (what the offline check looks for)."""

    def options(self) -> tuple[Option, ...]:
        d = self.defaults
        options = (
            Option(
                "model", "path-or-id", d.model, help="hub id, or a local directory saved with save_pretrained"
            ),
            Option("revision", "str", None, help="hub branch, tag or commit of `model` (default: main)"),
            Option(
                "variant", "str", None, help="weight file variant to load, e.g. 'fp16' (default: full files)"
            ),
            Option("steps", "int", d.steps, min=1, max=1000, help="denoising steps"),
            Option("guidance", "float", d.guidance, min=0, max=100, help="classifier-free guidance scale"),
            Option(
                "resolution",
                "int",
                d.resolution,
                help=f"side of the square images made (multiple of "
                f"{self.resolution_step}); the audit resizes them to the task's size",
                check=lambda resolution, settings: self.check_resolution(resolution),
            ),
            Option(
                "device",
                "str",
                "auto",
                help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (one this machine has)",
                check=torch_device,
            ),
            Option(
                "dtype",
                "str",
                "auto",
                choices=DTYPES,
                help=f"auto: {d.gpu_dtype} on a GPU, fp32 on the CPU (the paper's code ran fp32)",
            ),
            Option("batch_size", "int", d.batch_size, min=1, max=100_000, help="images per pipeline call"),
            Option(
                "cpu_offload", "bool", False, help="keep idle sub-models in CPU memory (small GPUs; slower)"
            ),
            Option(
                "compile",
                "bool",
                True,
                help="on CUDA, torch.compile the denoiser and the image decoder "
                "(the first batch pays about a minute of compilation)",
            ),
        ) + self.extra_options
        checks = {
            location: offline_check(revision, self.replaced_components.get(location))
            for location, revision in self.sources_settings
        }
        return tuple(replace(o, check=checks[o.name]) if o.name in checks else o for o in options)

    def check_resolution(self, resolution: int) -> None:
        step = self.resolution_step
        if resolution < step or resolution > 4096 or resolution % step:
            raise InputError(
                f"resolution = {resolution}: {self.name} makes square images whose side is a multiple of "
                f"{step}, from {step} to 4096 (its native size is {self.defaults.resolution})"
            )

    def sampling_identity(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings the images depend on (besides the model, dtype and library versions)."""
        return {k: settings[k] for k in ("steps", "guidance", "resolution")}

    # ---- the four steps ---------------------------------------------------------------------------------

    def load(self, sources: Mapping[str, ModelSource], settings: Mapping[str, Any], dtype: str) -> list[Any]:
        """The pipelines (one, or prior and decoder), on the CPU, in `dtype`, progress bars off."""
        raise NotImplementedError

    def encode(self, pipes: Sequence[Any], prompts: list[str], settings: Mapping[str, Any]) -> dict[str, Any]:
        """Text embeddings of `prompts` (batch first), exactly as the pipeline's own call computes them."""
        raise NotImplementedError

    def sample(
        self,
        pipes: Sequence[Any],
        embeds: Mapping[str, Any],
        generators: list[Any],
        settings: Mapping[str, Any],
    ) -> Any:
        """One batch: images as a float tensor (N, 3, H, W) in [0, 1] on the pipeline's device."""
        raise NotImplementedError

    def conv_nets(self, pipes: Sequence[Any]) -> list[Any]:
        """Convolutional modules that run faster in channels-last memory layout."""
        raise NotImplementedError

    def compiled_modules(self, pipes: Sequence[Any]) -> list[Any]:
        """The modules worth compiling: the denoiser(s) and the image decoder."""
        raise NotImplementedError

    def output_size(self, pipes: Sequence[Any], resolution: int) -> int:
        """The side of the images the loaded model makes at `resolution` (checked against the setting)."""
        return resolution


def _pipeline_kwargs(settings: Mapping[str, Any], dtype: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if settings.get("variant"):
        kwargs["variant"] = settings["variant"]
    return kwargs


def _quiet(pipe: Any) -> Any:
    # trainprove shows one progress bar per image set; the pipeline's per-step bars would drown it.
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---- Stable Diffusion v1.4 and the Latent Consistency Model ---------------------------------------------


class StableDiffusion(Backend):
    name = "stable-diffusion-v1-4"
    description = "Stable Diffusion v1.4 (diffusers, PNDM 50 steps, guidance 7.5, 512 px; no safety checker)"
    defaults = Defaults("CompVis/stable-diffusion-v1-4", 50, 7.5, 512, "fp16", 16)
    resolution_step = 8
    pipeline_class = "StableDiffusionPipeline"

    def load(self, sources, settings, dtype):
        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        # No safety checker: it blacks out images it flags, which would plant black images in the sets.
        pipe = load_from(
            sources["model"],
            cls.__name__,
            cls.from_pretrained,
            safety_checker=None,
            requires_safety_checker=False,
            **_pipeline_kwargs(settings, dtype),
        )
        if pipe.vae_scale_factor and settings["resolution"] % pipe.vae_scale_factor:
            raise InputError(
                f"resolution = {settings['resolution']}: this model's latents are 1/{pipe.vae_scale_factor} "
                f"of the image side, so the resolution must be a multiple of {pipe.vae_scale_factor}"
            )
        return [_quiet(pipe)]

    def _guided(self, settings: Mapping[str, Any]) -> bool:
        return settings["guidance"] > 1.0

    def encode(self, pipes, prompts, settings):
        (pipe,) = pipes
        guided = self._guided(settings)
        positive, negative = pipe.encode_prompt(
            prompts, pipe._execution_device, 1, guided, negative_prompt=None
        )
        return {"prompt_embeds": positive, **({"negative_prompt_embeds": negative} if guided else {})}

    def sample(self, pipes, embeds, generators, settings):
        (pipe,) = pipes
        size = settings["resolution"]
        return pipe(
            **embeds,
            num_inference_steps=settings["steps"],
            guidance_scale=settings["guidance"],
            height=size,
            width=size,
            generator=generators,
            output_type="pt",
        ).images

    def conv_nets(self, pipes):
        return [pipes[0].unet, pipes[0].vae]

    def compiled_modules(self, pipes):
        return [pipes[0].unet, pipes[0].vae.decoder]


class LatentConsistency(StableDiffusion):
    name = "latent-consistency"
    description = "Latent Consistency Model, Dreamshaper v7 (diffusers, 4 steps, guidance 8.5, 512 px)"
    defaults = Defaults("SimianLuo/LCM_Dreamshaper_v7", 4, 8.5, 512, "fp16", 32)
    pipeline_class = "LatentConsistencyModelPipeline"

    def _guided(self, settings: Mapping[str, Any]) -> bool:
        # LCM feeds the guidance scale to the UNet as an embedding; there is no unconditional pass.
        return False


# ---- PixArt-α -------------------------------------------------------------------------------------------


class PixArtAlpha(Backend):
    name = "pixart-alpha"
    description = (
        "PixArt-α XL-2 512 (diffusers, DPM-Solver 20 steps, guidance 4.5, 512 px, T5-XXL text encoder)"
    )
    defaults = Defaults("PixArt-alpha/PixArt-XL-2-512x512", 20, 4.5, 512, "bf16", 16)
    resolution_step = 16

    def load(self, sources, settings, dtype):
        from diffusers import PixArtAlphaPipeline

        pipe = load_from(
            sources["model"],
            "PixArtAlphaPipeline",
            PixArtAlphaPipeline.from_pretrained,
            **_pipeline_kwargs(settings, dtype),
        )
        step = pipe.vae_scale_factor * pipe.transformer.config.patch_size
        if settings["resolution"] % step:
            raise InputError(f"resolution = {settings['resolution']}: this model needs a multiple of {step}")
        return [_quiet(pipe)]

    def encode(self, pipes, prompts, settings):
        (pipe,) = pipes
        guided = settings["guidance"] > 1.0
        # clean_caption=False: the pipeline's default cleaning depends on whether beautifulsoup4 and ftfy
        # happen to be installed, and an image set must not depend on that.
        embeds, mask, negative, negative_mask = pipe.encode_prompt(
            prompts,
            guided,
            negative_prompt="",
            device=pipe._execution_device,
            clean_caption=False,
            max_sequence_length=120,
        )
        out = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
        if guided:
            out |= {"negative_prompt_embeds": negative, "negative_prompt_attention_mask": negative_mask}
        return out

    def sample(self, pipes, embeds, generators, settings):
        (pipe,) = pipes
        size = settings["resolution"]
        # Resolution binning would render every square size at 512 and resize; trainprove resizes itself.
        # negative_prompt=None: its default "" clashes with the negative embeddings passed in.
        return pipe(
            **embeds,
            negative_prompt=None,
            num_inference_steps=settings["steps"],
            guidance_scale=settings["guidance"],
            height=size,
            width=size,
            generator=generators,
            output_type="pt",
            clean_caption=False,
            use_resolution_binning=False,
        ).images

    def conv_nets(self, pipes):
        return [pipes[0].vae]

    def compiled_modules(self, pipes):
        return [pipes[0].transformer, pipes[0].vae.decoder]


# ---- Stable Cascade (lite) ------------------------------------------------------------------------------


class StableCascade(Backend):
    name = "stable-cascade"
    description = (
        "Stable Cascade lite (diffusers; prior_lite 20 steps guidance 4, decoder_lite 10 steps "
        "guidance 0, 1024 px)"
    )
    defaults = Defaults("stabilityai/stable-cascade-prior", 20, 4.0, 1024, "bf16", 8)
    resolution_step = 128
    sources_settings = (("model", "revision"), ("decoder", "decoder_revision"))
    replaced_components = {"model": ("prior", "prior_subfolder"), "decoder": ("decoder", "decoder_subfolder")}
    extra_options = (
        Option(
            "prior_subfolder",
            "str",
            "prior_lite",
            help="subfolder of `model` holding the prior UNet ('' or absent: the pipeline's own prior/)",
        ),
        Option(
            "decoder",
            "path-or-id",
            "stabilityai/stable-cascade",
            help="decoder pipeline: hub id, or a local directory saved with save_pretrained",
        ),
        Option("decoder_revision", "str", None, help="hub branch, tag or commit of `decoder`"),
        Option(
            "decoder_subfolder",
            "str",
            "decoder_lite",
            help="subfolder of `decoder` holding the decoder UNet ('' or absent: the pipeline's decoder/)",
        ),
        Option("decoder_steps", "int", 10, min=1, max=1000, help="decoder denoising steps"),
        Option("decoder_guidance", "float", 0.0, min=0, max=100, help="decoder guidance scale"),
    )

    def sampling_identity(self, settings):
        keys = ("steps", "guidance", "resolution", "decoder_steps", "decoder_guidance")
        return {k: settings[k] for k in keys} | {
            "prior_subfolder": settings["prior_subfolder"],
            "decoder_subfolder": settings["decoder_subfolder"],
        }

    def load(self, sources, settings, dtype):
        from diffusers import StableCascadeDecoderPipeline, StableCascadePriorPipeline, StableCascadeUNet

        from .cascade import enable_stable_cascade_loading

        enable_stable_cascade_loading()
        kwargs = _pipeline_kwargs(settings, dtype)
        pipes = []
        for role, cls in (("prior", StableCascadePriorPipeline), ("decoder", StableCascadeDecoderPipeline)):
            source = sources["model" if role == "prior" else "decoder"]
            subfolder = settings[f"{role}_subfolder"]
            unet = {}
            if subfolder and (not source.local or (_subdir(source, subfolder))):
                unet[role] = load_from(
                    source,
                    f"{role} UNet ({subfolder}/)",
                    StableCascadeUNet.from_pretrained,
                    subfolder=subfolder,
                    **kwargs,
                )
            pipes.append(_quiet(load_from(source, cls.__name__, cls.from_pretrained, **unet, **kwargs)))
        return pipes

    def encode(self, pipes, prompts, settings):
        prior, decoder = pipes
        device = prior._execution_device
        n = len(prompts)
        guided = settings["guidance"] > 1.0
        embeds, pooled, negative, negative_pooled = prior.encode_prompt(
            device, n, 1, guided, prompt=prompts, negative_prompt=[""] * n if guided else None
        )
        out = {"prior_prompt_embeds": embeds, "prior_prompt_embeds_pooled": pooled}
        if guided:
            out |= {
                "prior_negative_prompt_embeds": negative,
                "prior_negative_prompt_embeds_pooled": negative_pooled,
            }
        # The decoder has its own text encoder (the same weights on the hub, but a user's may differ).
        decoder_guided = settings["decoder_guidance"] > 1.0
        embeds, pooled, negative, negative_pooled = decoder.encode_prompt(
            device, n, 1, decoder_guided, prompt=prompts, negative_prompt=[""] * n if decoder_guided else None
        )
        out |= {"decoder_prompt_embeds": embeds, "decoder_prompt_embeds_pooled": pooled}
        if decoder_guided:
            out |= {
                "decoder_negative_prompt_embeds": negative,
                "decoder_negative_prompt_embeds_pooled": negative_pooled,
            }
        return out

    def sample(self, pipes, embeds, generators, settings):
        prior, decoder = pipes
        size = settings["resolution"]

        def part(prefix: str) -> dict[str, Any]:
            return {k.removeprefix(prefix): v for k, v in embeds.items() if k.startswith(prefix)}

        # The same per-image generators drive both stages, as in diffusers' combined pipeline: each image's
        # noise stream continues from the prior into the decoder.
        image_embeddings = prior(
            **part("prior_"),
            height=size,
            width=size,
            num_inference_steps=settings["steps"],
            guidance_scale=settings["guidance"],
            generator=generators,
            output_type="pt",
        ).image_embeddings
        return decoder(
            image_embeddings=image_embeddings,
            **part("decoder_"),
            num_inference_steps=settings["decoder_steps"],
            guidance_scale=settings["decoder_guidance"],
            generator=generators,
            output_type="pt",
        ).images

    def conv_nets(self, pipes):
        return [pipes[0].prior, pipes[1].decoder, pipes[1].vqgan]

    def compiled_modules(self, pipes):
        return [pipes[0].prior, pipes[1].decoder, pipes[1].vqgan.up_blocks]

    def output_size(self, pipes, resolution):
        import math

        prior, decoder = pipes
        latent = math.ceil(resolution / prior.config.resolution_multiple)
        vq_scale = decoder.vqgan.config.up_down_scale_factor**decoder.vqgan.config.levels
        return int(latent * decoder.config.latent_dim_scale) * vq_scale


def _subdir(source: ModelSource, subfolder: str) -> bool:
    from pathlib import Path

    return (Path(source.location) / subfolder).is_dir()


BACKENDS: dict[str, Backend] = {
    b.name: b for b in (StableDiffusion(), LatentConsistency(), PixArtAlpha(), StableCascade())
}
