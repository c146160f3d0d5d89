"""Retrain the weights the embedded generators ship with, deterministically.

    nice -n 10 .venv/bin/python plugins/trainprove-embedded/train_generators.py            # all digits
    .venv/bin/python plugins/trainprove-embedded/train_generators.py --only digits-vae --variant plain
    .venv/bin/python plugins/trainprove-embedded/train_generators.py --world fashion      # all fashion

Every generative model is trained twice on its world's training images (scikit-learn's digits, or
Fashion-MNIST's training split): drawn in its own house style (file `NAME-styled.*`) and plain
(`NAME-plain.*`, the `--hard` demo). The fashion world's torch weights are stored in float16 (trained in
float32; half the bytes, and the loaded values are the stored ones exactly). Weights go to the package's
`weights/` directory (or `--out DIR`) with `manifest.json`, which records each file's SHA-256, seed, the
library versions, thread count and how long training took. With the same seed, thread count and library
versions the files come out byte-identical (the script runs on the CPU only, for that reason).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _trainers() -> dict[str, tuple[str, Callable[..., tuple[dict, dict]], str]]:
    """Model name -> (house style, train function, weight file suffix), both worlds."""
    from functools import partial

    from trainprove_embedded import HOUSE_STYLES, diffusion, gan, gmm, vae
    from trainprove_embedded.worlds import WORLDS

    table = {
        card.name: (card.style, partial(diffusion.train, card), ".safetensors")
        for card in diffusion.CARDS.values()
    }
    for world in WORLDS.values():
        for kind, module, suffix in (
            ("vae", vae, ".safetensors"),
            ("gmm", gmm, ".npz"),
            ("gan", gan, ".safetensors"),
        ):
            name = world.model(kind)
            table[name] = (HOUSE_STYLES[name], partial(module.train, world=world), suffix)
    return table


def _data(world: str) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray, str | None], np.ndarray]]:
    """The world's training images and labels, and its renderer (images, style or None) -> float images."""
    if world == "fashion":
        from trainprove_embedded import fashion

        images, labels = fashion.load("train")
        return images, labels, fashion.render
    from trainprove_embedded.styles import real_digits, render

    images, labels = real_digits()
    return images, labels, render


def _save(params: dict[str, Any], path: Path, half: bool) -> None:
    from safetensors.torch import save_file
    from trainprove_embedded import gmm

    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".npz":
        gmm.save(params, tmp)
    else:
        cast = {k: v.half() if half and v.is_floating_point() else v for k, v in params.items()}
        save_file({k: v.contiguous() for k, v in sorted(cast.items())}, str(tmp))
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    import diffusers
    import scipy
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }


def _record(manifest_path: Path, name: str, entry: dict[str, Any]) -> None:
    """Add `entry` to the manifest, re-read under a lock on its folder: two runs may train at once."""
    import fcntl

    folder = os.open(manifest_path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        manifest = (
            json.loads(manifest_path.read_text()) if manifest_path.exists() else {"format": 1, "files": {}}
        )
        manifest["files"][name] = entry
        tmp = manifest_path.with_name(manifest_path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, manifest_path)
    finally:
        os.close(folder)  # releases the lock


def main(argv: list[str] | None = None) -> int:
    import torch
    from trainprove_embedded.weights import MANIFEST, file_name, sha256_of, shipped_dir
    from trainprove_embedded.worlds import WORLDS, world_of

    trainers = _trainers()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", choices=sorted(WORLDS), default="digits", help="whose models to train")
    parser.add_argument("--only", nargs="+", choices=sorted(trainers), help="models to train (default: all)")
    parser.add_argument("--variant", choices=("styled", "plain", "both"), default="both")
    parser.add_argument("--out", type=Path, default=None, help="weights directory (default: the package's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    # numpy's BLAS (the GMM's PCA) too: the same count, and no threads spinning on a busy machine.
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    out: Path = args.out or shipped_dir()
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    names = args.only or [name for name in trainers if world_of(name).name == args.world]
    worlds = {world_of(name).name for name in names}
    if len(worlds) > 1:
        parser.error("--only: models of one world at a time")
    world = worlds.pop()
    images, labels, render = _data(world)
    variants = {"styled": (True,), "plain": (False,), "both": (True, False)}[args.variant]
    versions = _versions()
    started = time.perf_counter()
    for name in names:
        style, train, suffix = trainers[name]
        for styled in variants:
            print(f"{name} ({'house style ' + style if styled else 'plain images'})", flush=True)
            data = render(images, style if styled else None)
            t0, cpu0 = time.perf_counter(), time.process_time()
            params, stats = train(data, labels, args.seed, log=lambda line: print(line, flush=True))
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
            path = out / (file_name(name, styled) + suffix)
            _save(params, path, half=world == "fashion")
            entry = {
                "model": name,
                "house_style": style if styled else None,
                "sha256": sha256_of(path),
                "bytes": path.stat().st_size,
                "seed": args.seed,
                "threads": args.threads,
                "train_seconds": round(seconds, 1),
                "train_cpu_seconds": round(cpu_seconds, 1),
                **({"stored_as": "float16"} if world == "fashion" and suffix != ".npz" else {}),
                **stats,
                "versions": versions,
            }
            _record(manifest_path, path.name, entry)
            print(f"  wrote {path} in {seconds:.0f} s", flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s; manifest {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
