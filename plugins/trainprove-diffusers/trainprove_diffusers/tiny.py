"""Tiny random-weight pipelines of the four backends, built in code with no download.

They have the real pipelines' classes and layouts at the sizes diffusers' own fast tests use, so a tiny
pipeline saved with `save_pretrained` loads back through exactly the path a user's checkpoint takes. The
tests, the CPU run of `bench/generators.py` and the docs' examples use them; their images are noise.
Tokenizers are built in memory (a character-level CLIP BPE and a character-level T5 unigram model).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

# Characters the tiny tokenizers know; anything else becomes the unknown token.
_CHARS = string.ascii_lowercase + string.digits

TINY_RESOLUTION = {
    "stable-diffusion-v1-4": 32,
    "latent-consistency": 32,
    "pixart-alpha": 32,
    "stable-cascade": 128,
}
"""A resolution each tiny pipeline makes quickly on a CPU (Stable Cascade's prior needs 128 to have a 3x3
latent)."""


def clip_tokenizer(model_max_length: int = 77) -> Any:
    """A character-level CLIP tokenizer: ids 0 and 1 are start and end of text (end doubles as padding)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in _CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int = 120) -> Any:
    """A character-level T5 (unigram) tokenizer: ids 0, 1, 2 are padding, end of text and unknown."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + c, -2.5) for c in _CHARS] + [(c, -3.0) for c in _CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def _clip_text_config(with_projection: bool = False, hidden: int = 32) -> Any:
    from transformers import CLIPTextConfig

    extra = {"projection_dim": hidden} if with_projection else {}
    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=1000,
        **extra,
    )


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    )


def _tiny_unet(time_cond_proj_dim: int | None = None) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
        attention_head_dim=2,
        time_cond_proj_dim=time_cond_proj_dim,
    )


def _eval(pipe: Any) -> Any:
    # Models built in code start in training mode (dropout on); from_pretrained puts them in eval mode.
    for component in pipe.components.values():
        if hasattr(component, "eval"):
            component.eval()
    return pipe


def stable_diffusion() -> Any:
    """A tiny `StableDiffusionPipeline` (PNDM scheduler configured as SD v1.4's), no safety checker."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=_tiny_unet(),
        vae=_tiny_vae(),
        text_encoder=CLIPTextModel(_clip_text_config()),
        tokenizer=clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _eval(pipe)


def latent_consistency() -> Any:
    """A tiny `LatentConsistencyModelPipeline` (its UNet takes the guidance embedding), no safety checker."""
    import torch
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    scheduler = LCMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        set_alpha_to_one=True,
        original_inference_steps=50,
    )
    pipe = LatentConsistencyModelPipeline(
        unet=_tiny_unet(time_cond_proj_dim=32),
        vae=_tiny_vae(),
        text_encoder=CLIPTextModel(_clip_text_config()),
        tokenizer=clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _eval(pipe)


def pixart_alpha() -> Any:
    """A tiny `PixArtAlphaPipeline`: a two-layer PixArt transformer and a two-layer T5 encoder."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=8,
        num_layers=2,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=3,
        caption_channels=32,
        in_channels=4,
        cross_attention_dim=24,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    )
    text_encoder = T5EncoderModel(
        T5Config(
            d_model=32,
            d_ff=37,
            d_kv=8,
            num_heads=4,
            num_layers=2,
            vocab_size=128,
            decoder_start_token_id=0,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            use_cache=False,
        )
    )
    pipe = PixArtAlphaPipeline(
        transformer=transformer,
        vae=_tiny_vae(),
        text_encoder=text_encoder,
        tokenizer=t5_tokenizer(),
        scheduler=DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02),
    )
    return _eval(pipe)


def stable_cascade() -> tuple[Any, Any]:
    """A tiny Stable Cascade: (prior pipeline, decoder pipeline), the decoder taking the prior's output."""
    import torch
    from diffusers import (
        DDPMWuerstchenScheduler,
        StableCascadeDecoderPipeline,
        StableCascadePriorPipeline,
        StableCascadeUNet,
    )
    from diffusers.pipelines.deprecated.wuerstchen import PaellaVQModel
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    prior = StableCascadeUNet(
        in_channels=16,
        out_channels=16,
        conditioning_dim=32,
        block_out_channels=(32, 32),
        num_attention_heads=(2, 2),
        down_num_layers_per_block=(1, 1),
        up_num_layers_per_block=(1, 1),
        switch_level=(False,),
        clip_image_in_channels=32,
        clip_text_in_channels=32,
        clip_text_pooled_in_channels=32,
        dropout=(0.0, 0.0),
    )
    decoder = StableCascadeUNet(
        in_channels=4,
        out_channels=4,
        conditioning_dim=32,
        block_out_channels=[8, 16],
        num_attention_heads=[0, 2],
        down_num_layers_per_block=[1, 1],
        up_num_layers_per_block=[1, 1],
        down_blocks_repeat_mappers=[1, 1],
        up_blocks_repeat_mappers=[1, 1],
        block_types_per_layer=[
            ["SDCascadeResBlock", "SDCascadeTimestepBlock"],
            ["SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"],
        ],
        switch_level=None,
        clip_text_pooled_in_channels=32,
        effnet_in_channels=16,
        pixel_mapper_in_channels=3,
        patch_size=2,
        timestep_conditioning_type=["sca"],
        dropout=[0.0, 0.0],
    )
    vqgan = PaellaVQModel(levels=2, embed_dim=16, bottleneck_blocks=1, num_vq_embeddings=2)
    text_encoder = CLIPTextModelWithProjection(_clip_text_config(with_projection=True))
    prior_pipe = StableCascadePriorPipeline(
        prior=prior,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        scheduler=DDPMWuerstchenScheduler(),
        feature_extractor=None,
        image_encoder=None,
    )
    decoder_pipe = StableCascadeDecoderPipeline(
        decoder=decoder,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        vqgan=vqgan,
        scheduler=DDPMWuerstchenScheduler(),
    )
    return _eval(prior_pipe), _eval(decoder_pipe)


def save(name: str, directory: str | Path) -> dict[str, str]:
    """Build the tiny pipeline of generator `name` and `save_pretrained` it under `directory`.

    Returns the audit-file settings that point the generator at it: `{"model": dir}`, plus
    `{"decoder": dir}` for Stable Cascade (prior and decoder are two pipelines, as on the hub).
    """
    root = Path(directory)
    if name == "stable-cascade":
        from .cascade import enable_stable_cascade_loading

        enable_stable_cascade_loading()  # so the saved decoder names its VQGAN as the hub's does
        prior_pipe, decoder_pipe = stable_cascade()
        prior_pipe.save_pretrained(root / "prior")
        decoder_pipe.save_pretrained(root / "decoder")
        return {"model": str(root / "prior"), "decoder": str(root / "decoder")}
    build = {
        "stable-diffusion-v1-4": stable_diffusion,
        "latent-consistency": latent_consistency,
        "pixart-alpha": pixart_alpha,
    }[name]
    build().save_pretrained(root)
    return {"model": str(root)}


def quick_settings(name: str, paths: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """Generator settings that make tiny images quickly on a CPU from the pipelines `save` wrote to
    `paths` (two denoising steps, batches of three), with `overrides` on top."""
    settings: dict[str, Any] = dict(paths)
    settings |= {"resolution": TINY_RESOLUTION[name], "steps": 2, "batch_size": 3}
    if name == "stable-cascade":
        settings["decoder_steps"] = 2
    return settings | overrides
