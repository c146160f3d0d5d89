"""Speed of trainprove's diffusion generators against plain diffusers: same weights, same seeds, one run.

For each backend the bench builds the pipelines once, with random weights (no download: the full-size
configurations below are the public configs of the paper's checkpoints), then

1. plain diffusers: one warm-up call, then one timed pipeline call at the issue's anchor batch size, the way a
   user writes it (`pipe(prompts, generator=[...], output_type="np")`);
2. trainprove: the same pipelines wrapped in `DiffusersGenerator` (which rewrites them in place, so plain
   runs first), one warm-up batch that pays for compilation, then timed batches at its own batch size;
3. the images of both on the same seeds: max and mean absolute pixel difference.

Reported per backend: images/s, peak GPU memory, warm-up seconds, what trainprove applied. Results go to a
JSON file (written after every backend, so a run cut short keeps what it measured) and a table on stdout.

    python bench/generators.py --tiny                  # CPU, tiny random pipelines: checks the bench runs
    python bench/generators.py --out results.json      # one CUDA GPU, full size (~7 minutes on an H200)

Full-size notes: the models are random, so images are noise; speed and memory do not depend on weight
values. PixArt-α uses the full 24-layer T5-XXL encoder unless `--t5-layers` says otherwise. Tokenizers are
character-level stand-ins built in memory; prompts are padded to the real lengths (77 CLIP, 120 T5 tokens),
so the text encoders do the real amount of work.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins" / "trainprove-diffusers")]

from trainprove_diffusers import tiny  # noqa: E402
from trainprove_diffusers.backends import BACKENDS  # noqa: E402
from trainprove_diffusers.generator import DiffusersGenerator, settings_for  # noqa: E402

from trainprove_core.records import GenerationRequest  # noqa: E402
from trainprove_core.store import derive_seed  # noqa: E402

NAMES = ("stable-diffusion-v1-4", "latent-consistency", "pixart-alpha", "stable-cascade")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Plain diffusers 0.42.1 on one H200 (the issue's anchors): images/s, batch size, dtype.
ANCHORS = {
    "stable-diffusion-v1-4": (3.07, 16, "fp16"),
    "latent-consistency": (32.9, 32, "fp16"),
    "pixart-alpha": (6.49, 16, "bf16"),
    "stable-cascade": (1.375, 4, "bf16"),
}
# Seconds a backend needs at least (build, plain, eager trainprove run), and more for compilation; a run
# whose --deadline leaves less skips the backend, or its compilation.
MIN_SECONDS = 40
COMPILE_SECONDS = {
    "stable-diffusion-v1-4": 110,
    "latent-consistency": 80,
    "pixart-alpha": 90,
    "stable-cascade": 130,
}

# ---- full-size configurations (the hub checkpoints' public configs) -------------------------------------

SD_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    norm_eps=1e-5,
    act_fn="silu",
    downsample_padding=1,
    mid_block_scale_factor=1,
    flip_sin_to_cos=True,
    freq_shift=0,
)
SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=512,
)
CLIP_L = dict(  # openai/clip-vit-large-patch14 text tower (SD v1.4, LCM)
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
)
CLIP_G = dict(  # laion CLIP-ViT-bigG-14 text tower (Stable Cascade)
    vocab_size=49408,
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=20,
    max_position_embeddings=77,
    hidden_act="gelu",
    projection_dim=1280,
)
SD_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    skip_prk_steps=True,
    set_alpha_to_one=False,
    steps_offset=1,
)
LCM_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    set_alpha_to_one=True,
    original_inference_steps=50,
    steps_offset=1,
    timestep_spacing="leading",
    timestep_scaling=10.0,
)
PIXART_TRANSFORMER = dict(  # PixArt-alpha/PixArt-XL-2-512x512
    num_attention_heads=16,
    attention_head_dim=72,
    in_channels=4,
    out_channels=8,
    num_layers=28,
    cross_attention_dim=1152,
    attention_bias=True,
    sample_size=64,
    patch_size=2,
    activation_fn="gelu-approximate",
    num_embeds_ada_norm=1000,
    norm_type="ada_norm_single",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    caption_channels=4096,
)
T5_XXL = dict(  # google/t5-v1_1-xxl encoder
    vocab_size=32128,
    d_model=4096,
    d_ff=10240,
    d_kv=64,
    num_heads=64,
    num_layers=24,
    feed_forward_proj="gated-gelu",
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    layer_norm_epsilon=1e-6,
    is_encoder_decoder=False,
    use_cache=False,
)
PIXART_SCHEDULER = dict(
    beta_start=0.0001,
    beta_end=0.02,
    beta_schedule="linear",
    solver_order=2,
    prediction_type="epsilon",
    algorithm_type="dpmsolver++",
)
CASCADE_PRIOR_LITE = dict(
    in_channels=16,
    out_channels=16,
    timestep_ratio_embedding_dim=64,
    patch_size=1,
    conditioning_dim=1536,
    block_out_channels=[1536, 1536],
    num_attention_heads=[24, 24],
    down_num_layers_per_block=[4, 12],
    up_num_layers_per_block=[12, 4],
    down_blocks_repeat_mappers=[1, 1],
    up_blocks_repeat_mappers=[1, 1],
    block_types_per_layer=[["SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"]] * 2,
    clip_text_in_channels=1280,
    clip_text_pooled_in_channels=1280,
    clip_image_in_channels=768,
    clip_seq=4,
    kernel_size=3,
    dropout=[0.1, 0.1],
    self_attn=True,
    timestep_conditioning_type=["sca", "crp"],
    switch_level=[False],
)
CASCADE_DECODER_LITE = dict(
    in_channels=4,
    out_channels=4,
    timestep_ratio_embedding_dim=64,
    patch_size=2,
    conditioning_dim=1280,
    block_out_channels=[320, 576, 1152, 1152],
    down_num_layers_per_block=[2, 4, 14, 4],
    up_num_layers_per_block=[4, 14, 4, 2],
    down_blocks_repeat_mappers=[1, 1, 1, 1],
    up_blocks_repeat_mappers=[2, 2, 2, 2],
    num_attention_heads=[0, 9, 18, 18],
    block_types_per_layer=[["SDCascadeResBlock", "SDCascadeTimestepBlock"]] * 2
    + [["SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"]] * 2,
    clip_text_pooled_in_channels=1280,
    clip_seq=4,
    effnet_in_channels=16,
    pixel_mapper_in_channels=3,
    kernel_size=3,
    dropout=[0, 0, 0.1, 0.1],
    self_attn=True,
    timestep_conditioning_type=["sca"],
)


def _clip_config(config: dict[str, Any]) -> Any:
    from transformers import CLIPTextConfig

    # The stand-in tokenizer's ids: 0 starts, 1 ends and pads (the pooled output reads the first end token).
    return CLIPTextConfig(**config, bos_token_id=0, eos_token_id=1, pad_token_id=1)


def build_full(name: str, device: str, dtype: torch.dtype, t5_layers: int) -> list[Any]:
    """The pipelines of `name` at full size with random weights, the models built directly on `device`.

    Only the models: a scheduler built under `torch.device("cuda")` would keep its tables on the GPU, where
    diffusers' DPM-Solver cannot read them (and a user's schedulers never are).
    """
    import diffusers
    from diffusers.pipelines.deprecated.wuerstchen import PaellaVQModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    torch.manual_seed(0)
    if name in ("stable-diffusion-v1-4", "latent-consistency"):
        lcm = name == "latent-consistency"
        with torch.device(device):
            models = dict(
                unet=diffusers.UNet2DConditionModel(**SD_UNET, time_cond_proj_dim=256 if lcm else None),
                vae=diffusers.AutoencoderKL(**SD_VAE),
                text_encoder=CLIPTextModel(_clip_config(CLIP_L)),
            )
        parts = dict(
            models,
            tokenizer=tiny.clip_tokenizer(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        if lcm:
            pipes = [
                diffusers.LatentConsistencyModelPipeline(
                    **parts, scheduler=diffusers.LCMScheduler(**LCM_SCHEDULER)
                )
            ]
        else:
            pipes = [
                diffusers.StableDiffusionPipeline(**parts, scheduler=diffusers.PNDMScheduler(**SD_SCHEDULER))
            ]
    elif name == "pixart-alpha":
        with torch.device(device):
            models = dict(
                transformer=diffusers.PixArtTransformer2DModel(**PIXART_TRANSFORMER),
                vae=diffusers.AutoencoderKL(**SD_VAE),
                text_encoder=T5EncoderModel(T5Config(**{**T5_XXL, "num_layers": t5_layers})),
            )
        scheduler = diffusers.DPMSolverMultistepScheduler(**PIXART_SCHEDULER)
        pipes = [diffusers.PixArtAlphaPipeline(**models, tokenizer=tiny.t5_tokenizer(), scheduler=scheduler)]
    else:
        with torch.device(device):
            prior = diffusers.StableCascadeUNet(**CASCADE_PRIOR_LITE)
            decoder = diffusers.StableCascadeUNet(**CASCADE_DECODER_LITE)
            vqgan = PaellaVQModel()
            text_encoder = CLIPTextModelWithProjection(_clip_config(CLIP_G))  # one tower for both stages
        pipes = [
            diffusers.StableCascadePriorPipeline(
                prior=prior,
                text_encoder=text_encoder,
                tokenizer=tiny.clip_tokenizer(),
                scheduler=diffusers.DDPMWuerstchenScheduler(),
            ),
            diffusers.StableCascadeDecoderPipeline(
                decoder=decoder,
                text_encoder=text_encoder,
                vqgan=vqgan,
                tokenizer=tiny.clip_tokenizer(),
                scheduler=diffusers.DDPMWuerstchenScheduler(),
            ),
        ]
    for pipe in pipes:  # built in code, the models start in training mode (dropout on)
        for component in pipe.components.values():
            if isinstance(component, torch.nn.Module):
                component.eval()
    return [pipe.to(device, dtype) for pipe in pipes]


def build_tiny(name: str) -> list[Any]:
    builders = {
        "stable-diffusion-v1-4": tiny.stable_diffusion,
        "latent-consistency": tiny.latent_consistency,
        "pixart-alpha": tiny.pixart_alpha,
        "stable-cascade": lambda: list(tiny.stable_cascade()),
    }
    built = builders[name]()
    return built if isinstance(built, list) else [built]


# ---- the plain diffusers call ---------------------------------------------------------------------------


def plain_call(
    name: str, pipes: list[Any], prompts: list[str], seeds: list[int], s: dict[str, Any]
) -> np.ndarray:
    """What a user writes with diffusers alone, one generator per image, as uint8 (N, H, W, 3)."""
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    size = s["resolution"]
    common = dict(num_inference_steps=s["steps"], guidance_scale=s["guidance"], generator=generators)
    if name == "stable-cascade":
        prior, decoder = pipes
        embeddings = prior(prompts, height=size, width=size, **common).image_embeddings
        images = decoder(
            embeddings,
            prompts,
            num_inference_steps=s["decoder_steps"],
            guidance_scale=s["decoder_guidance"],
            generator=generators,
            output_type="np",
        ).images
    elif name == "pixart-alpha":
        # clean_caption=False and no resolution binning, as trainprove's generator (at 512 px binning is a
        # no-op; caption cleaning needs packages the bench machine may lack).
        images = pipes[0](
            prompts,
            height=size,
            width=size,
            clean_caption=False,
            use_resolution_binning=False,
            output_type="np",
            **common,
        ).images
    else:
        images = pipes[0](prompts, height=size, width=size, output_type="np", **common).images
    return (np.asarray(images, dtype=np.float32) * 255).round().clip(0, 255).astype(np.uint8)


# ---- measuring ------------------------------------------------------------------------------------------


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None


def timed(device: str, fn: Any) -> tuple[Any, float]:
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def requests(n: int) -> list[GenerationRequest]:
    prompts = [f"a photo of a {CIFAR10[i % len(CIFAR10)]}" for i in range(n)]
    return [
        GenerationRequest(p, i % len(CIFAR10), p.split()[-1], derive_seed(0, p, i))
        for i, p in enumerate(prompts)
    ]


def bench_backend(name: str, args: argparse.Namespace, seconds_left: float) -> dict[str, Any]:
    backend = BACKENDS[name]
    anchor, plain_batch, gpu_dtype = ANCHORS[name]
    device = args.device
    dtype = "fp32" if args.tiny else (args.dtype or gpu_dtype)
    overrides: dict[str, Any] = {"device": device, "dtype": dtype}
    if args.tiny:
        overrides["resolution"] = tiny.TINY_RESOLUTION[name]
        plain_batch, ours_batch = 2, 3
    else:
        ours_batch = args.batch.get(name, backend.defaults.batch_size)
    plain_batch = args.plain_batch or plain_batch
    if args.resolution:
        overrides["resolution"] = (
            args.resolution if name != "stable-cascade" else max(128, args.resolution // 128 * 128)
        )
    if args.steps:
        overrides |= {"steps": args.steps} | (
            {"decoder_steps": args.steps} if name == "stable-cascade" else {}
        )
    compile_ok = not args.no_compile and seconds_left >= MIN_SECONDS + COMPILE_SECONDS[name]
    settings = settings_for(name, **overrides, batch_size=ours_batch, compile=compile_ok)
    warm = {"steps": 2} | ({"decoder_steps": 2} if name == "stable-cascade" else {})
    result: dict[str, Any] = {
        "generator": name,
        "device": device,
        "dtype": dtype,
        "resolution": settings["resolution"],
        "steps": settings["steps"],
        "guidance": settings["guidance"],
    }

    (pipes, build_s) = timed(
        device,
        lambda: (
            build_tiny(name)
            if args.tiny
            else build_full(
                name,
                device,
                {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype],
                args.t5_layers,
            )
        ),
    )
    for pipe in pipes:
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
    result["build_s"] = round(build_s, 1)
    result["parameters_m"] = round(
        sum(
            p.numel()
            for pipe in pipes
            for m in pipe.components.values()
            if isinstance(m, torch.nn.Module)
            for p in m.parameters()
        )
        / 1e6,
        1,
    )

    reqs = requests(max(plain_batch, ours_batch * args.batches))
    prompts, seeds = [r.prompt for r in reqs[:plain_batch]], [r.seed for r in reqs[:plain_batch]]
    plain_call(name, pipes, prompts, seeds, {**settings, **warm})
    reset_peak(device)
    plain, plain_s = timed(device, lambda: plain_call(name, pipes, prompts, seeds, settings))
    result["plain"] = {
        "batch": plain_batch,
        "seconds": round(plain_s, 3),
        "img_s": round(plain_batch / plain_s, 3),
        "peak_gib": peak_gib(device),
    }
    if not args.tiny and device.startswith("cuda"):
        result["plain"]["anchor_img_s_h200"] = anchor

    generator = DiffusersGenerator(
        backend, settings, pipelines=pipes, model_identity={"bench": "random weights"}
    )
    _, warm_s = timed(device, lambda: generator.variant(**warm).generate(reqs[:ours_batch]))
    reset_peak(device)
    count = ours_batch * args.batches
    ours, ours_s = timed(device, lambda: generator.generate(reqs[:count]))
    result["trainprove"] = {
        "batch": ours_batch,
        "images": count,
        "seconds": round(ours_s, 3),
        "img_s": round(count / ours_s, 3),
        "peak_gib": peak_gib(device),
        "warmup_s": round(warm_s, 1),
        "applied": generator.speedups,
    }
    if not compile_ok and not args.no_compile and device.startswith("cuda"):
        result["trainprove"]["note"] = "compilation skipped: too little time left before --deadline"
    diff = np.abs(ours[:plain_batch].astype(np.int16) - plain.astype(np.int16))
    result["speedup"] = round(result["trainprove"]["img_s"] / result["plain"]["img_s"], 2)
    result["max_pixel_diff"] = int(diff.max())
    result["mean_pixel_diff"] = round(float(diff.mean()), 3)
    result["share_pixels_off_by_more_than_8"] = round(float((diff > 8).mean()), 4)
    return result


def environment(device: str) -> dict[str, Any]:
    import diffusers
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
    return env


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| generator | plain img/s (batch) | trainprove img/s (batch) | speed-up | peak GiB plain / ours | "
        "warm-up s | max / mean pixel diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['generator']} | {r.get('error') or r.get('skipped')} |||||")
            continue
        p, t = r["plain"], r["trainprove"]
        cells = [
            r["generator"],
            f"{p['img_s']} ({p['batch']})",
            f"{t['img_s']} ({t['batch']})",
            f"{r['speedup']}x",
            f"{p['peak_gib']} / {t['peak_gib']}",
            str(t["warmup_s"]),
            f"{r['max_pixel_diff']} / {r['mean_pixel_diff']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random pipelines on the CPU")
    parser.add_argument("--generators", default=",".join(NAMES), help="comma-separated generator names")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument(
        "--dtype", default=None, choices=("fp16", "bf16", "fp32"), help="default: the anchors'"
    )
    parser.add_argument(
        "--batch", default="", help="trainprove batch sizes, e.g. stable-cascade=16,pixart-alpha=32"
    )
    parser.add_argument("--plain-batch", type=int, default=None, help="override the anchors' batch sizes")
    parser.add_argument("--batches", type=int, default=1, help="timed trainprove batches per generator")
    parser.add_argument("--no-compile", action="store_true", help="measure trainprove without torch.compile")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds the whole run may take")
    parser.add_argument("--t5-layers", type=int, default=24, help="T5-XXL encoder depth (24 is the real one)")
    parser.add_argument("--steps", type=int, default=None, help="override denoising steps (smoke tests)")
    parser.add_argument("--resolution", type=int, default=None, help="override resolution (smoke tests)")
    args = parser.parse_args()
    args.device = args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    args.batch = {k: int(v) for k, v in (item.split("=") for item in args.batch.split(",") if item)}
    if args.device == "cpu":
        torch.set_num_threads(min(torch.get_num_threads(), 2))
    # A compilation failure falls back to running eagerly instead of losing the backend's numbers.
    torch._dynamo.config.suppress_errors = True

    start = time.time()
    doc: dict[str, Any] = {"environment": environment(args.device), "args": sys.argv[1:], "results": []}
    for name in args.generators.split(","):
        left = args.deadline - (time.time() - start)
        if left < MIN_SECONDS:
            doc["results"].append({"generator": name, "skipped": f"{left:.0f} s left before --deadline"})
            continue
        print(f"[{time.time() - start:6.1f} s] {name}", flush=True)
        began = time.time()
        try:
            result = bench_backend(name, args, left)
        except Exception as exc:  # noqa: BLE001 - one backend failing must not lose the others' numbers
            where = traceback.format_exc(limit=-4)
            result = {"generator": name, "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": where}
        result["total_s"] = round(time.time() - began, 1)
        print(json.dumps(result), flush=True)
        doc["results"].append(result)
        gc.collect()
        if args.device.startswith("cuda"):
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        if args.out:
            args.out.write_text(json.dumps(doc, indent=2))
    doc["seconds"] = round(time.time() - start, 1)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc["environment"]))
    print(table(doc["results"]))


if __name__ == "__main__":
    main()
