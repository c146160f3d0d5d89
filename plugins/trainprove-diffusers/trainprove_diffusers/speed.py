"""What makes trainprove's generator faster than a plain pipeline call, without changing what it samples.

Applied once, when a generator first loads its pipelines on a CUDA device:

- channels-last memory layout for the convolutional networks (UNets, VAE, VQGAN), which cuDNN runs faster
  in fp16/bf16 on tensor cores;
- fused query/key/value projections where diffusers offers them (one larger matrix product instead of
  three);
- `torch.compile` of the denoiser and the image decoder (fused normalisation and activation kernels), with
  static shapes: the generator pads a short last batch to the full batch size so nothing recompiles.

Around every batch the generator also: computes text embeddings once per distinct prompt (an audit prompts
hundreds of images with one class prompt), enables cuDNN's algorithm search, and converts images to uint8
on the GPU. None of this changes the sampler: outputs differ from plain diffusers only by floating-point
rounding (bench/generators.py measures how much).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


def speed_up(conv_nets: Sequence[Any], compiled: Sequence[Any], *, compile: bool) -> list[str]:
    """Rewrite the given modules in place; returns the names of what was applied (for logs and benches)."""
    import torch

    applied = []
    for module in conv_nets:
        module.to(memory_format=torch.channels_last)
    applied.append("channels_last")
    fused = []
    for module in [*conv_nets, *compiled]:
        if (
            hasattr(module, "fuse_qkv_projections")
            and _fusable(module)
            and all(module is not m for m in fused)
        ):
            module.fuse_qkv_projections()
            fused.append(module)
    if fused:
        applied.append("fused_qkv")
    if compile:
        import torch._inductor.config as inductor

        # 1x1 convolutions (the UNets' attention projections) run as matrix products, which inductor fuses.
        inductor.conv_1x1_as_mm = True
        for module in compiled:
            module.compile(dynamic=False)
        applied.append("torch.compile")
    return applied


def _fusable(module: Any) -> bool:
    # diffusers refuses to fuse attention with added key/value projections; such models keep theirs.
    processors = getattr(module, "attn_processors", {})
    return not any("Added" in type(p).__name__ for p in processors.values())


@contextlib.contextmanager
def cudnn_autotune() -> Iterator[None]:
    """cuDNN benchmarks convolution algorithms for each new shape and keeps the fastest (the generator's
    shapes never change, so the search runs once); restored afterwards for the rest of the process."""
    import torch

    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
