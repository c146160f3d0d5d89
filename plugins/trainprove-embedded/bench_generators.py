"""Measure the embedded generators: sampling speed, class fidelity, and how separable their images are.

    nice -n 10 .venv/bin/python plugins/trainprove-embedded/bench_generators.py [--variant styled|plain|both]
        [--classifier logreg|cnn|both] [--world digits|fashion] [--json FILE]

For every source (each generator, and the real digits) it draws a training set and a disjoint test set,
trains a classifier on each source's training set and scores it on every source's test set: the
cross-source accuracy matrix (row: trained on, column: tested on). TrainProVe works when every column's
diagonal entry stands clearly above the rest of the column: a suspect trained elsewhere scores lower on
the defender's images than a shadow trained on the defender's own. Classifiers: scikit-learn's
logistic regression on the 8x8 pixels, and timm's `test_resnet` on 16x16 bilinear resizes trained like
the demo's suspects (AdamW, 12 epochs, random resized crops without flips).

"fidelity" is the accuracy, on 1,000 generated images, of a logistic regression trained on the generator's
own training data (all real digits drawn in its house style; for fashion, the first 6,000 images of the
training split in its style): does the class condition work? In the fashion world the logistic
regression reads all three channels (digits: one, they are grey) and the CNN sees the 16x16 images as
they are.
Timings are wall-clock on whatever else the machine is doing; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("ddpm", "cfg", "vae", "gmm", "gan", "real")
WORLD = "digits"
"""The world measured (`--world`); set once by main()."""
ONLY: list[str] = []
"""The kinds measured (`--kinds`; default all of KINDS)."""


def _sources() -> list[str]:
    return [f"{WORLD}-{kind}" for kind in (ONLY or KINDS)]


def _features(images: np.ndarray) -> np.ndarray:
    """The logistic regression's inputs: the grey channel of digits, every channel of fashion, in [0, 1]."""
    pixels = images[..., 0] if WORLD == "digits" else images
    return pixels.reshape(len(images), -1) / 255.0


def _generator(name: str, styled: bool) -> Any:
    import trainprove_embedded.plugin as plugin

    from trainprove_core.config import validate_table
    from trainprove_core.testing import isolated_plugins

    spec = isolated_plugins((plugin, "trainprove-embedded")).get("generator", name).spec
    table = {} if name.endswith("-real") or styled else {"house_style": False}
    return spec.factory(validate_table(table, spec.options, source="bench", where="generator"))


def _requests(per_class: int, base_seed: int) -> tuple[list[Any], np.ndarray]:
    from trainprove_core.records import GenerationRequest

    reqs = [
        GenerationRequest(f"a {c}", c, str(c), base_seed + c * 100_000 + i)
        for c in range(10)
        for i in range(per_class)
    ]
    return reqs, np.array([r.class_index for r in reqs])


def _logreg(train: np.ndarray, labels: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=1000).fit(_features(train), labels)
    return lambda images: model.predict(_features(images))


def _resize16(images: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((16, 16), Image.BILINEAR)) for im in images])


def _cnn(train: np.ndarray, labels: np.ndarray, seed: int = 0) -> Any:
    import timm
    import torch
    import torch.nn.functional as F

    def tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(_resize16(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = timm.create_model("test_resnet", num_classes=10)
    x, y = tensor(train), torch.from_numpy(labels)
    epochs, batch = 12, 64
    steps = epochs * -(-len(x) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            xb = x[idx]
            # Random resized crop, scale 0.7..1 of the area, as the demo's suspects (no flips for digits).
            scale = torch.empty(len(xb)).uniform_(0.7, 1.0, generator=gen).sqrt()
            theta = torch.zeros(len(xb), 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = scale
            theta[:, :, 2] = (torch.rand(len(xb), 2, generator=gen) * 2 - 1) * (1 - scale[:, None])
            grid = F.affine_grid(theta, list(xb.shape), align_corners=False)
            xb = F.grid_sample(xb, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()

    def predict(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(tensor(images)).argmax(1).numpy()

    return predict


def _matrix(sets: dict[str, dict[str, np.ndarray]], fit: Any) -> dict[str, dict[str, float]]:
    out = {}
    for a in sets:
        predict = fit(sets[a]["train"], sets[a]["train_labels"])
        out[a] = {b: float((predict(sets[b]["test"]) == sets[b]["test_labels"]).mean()) for b in sets}
    return out


def _margins(matrix: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per column (defender): own-source accuracy minus the best other source's accuracy on its images."""
    return {b: matrix[b][b] - max(matrix[a][b] for a in matrix if a != b) for b in matrix}


def _print_matrix(title: str, matrix: dict[str, dict[str, float]]) -> None:
    names = list(matrix)
    short = [n.removeprefix(f"{WORLD}-") for n in names]
    print(f"\n{title} (row: trained on, column: tested on)")
    print("| trained on \\ tested on | " + " | ".join(short) + " |")
    print("|---|" + "---|" * len(names))
    for a, s in zip(names, short, strict=True):
        print(f"| {s} | " + " | ".join(f"{100 * matrix[a][b]:.1f}" for b in names) + " |")
    margins = _margins(matrix)
    print("| own minus best other | " + " | ".join(f"{100 * margins[b]:+.1f}" for b in names) + " |")


def run(variant: str, classifiers: list[str], train_per_class: int, test_per_class: int) -> dict[str, Any]:
    from trainprove_embedded.styles import real_digits, render, to_uint8_rgb

    if WORLD == "fashion":
        from trainprove_embedded import fashion

        images, labels = fashion.load("train")
        images, labels, render = images[:6000], labels[:6000], fashion.render
    else:
        images, labels = real_digits()
    styled = variant == "styled"
    result: dict[str, Any] = {
        "variant": variant,
        "speed_s_per_1000": {},
        "cpu_s_per_1000": {},
        "fidelity": {},
        "matrices": {},
    }
    sets: dict[str, dict[str, np.ndarray]] = {}
    for name in _sources():
        gen = _generator(name, styled)
        reqs, req_labels = _requests(100, 10_000_000)
        gen.generate(reqs[:1])  # first-call costs (lazy imports, allocator warm-up) are not sampling
        t0, c0 = time.perf_counter(), time.process_time()
        sample = gen.generate(reqs)
        result["speed_s_per_1000"][name] = round((time.perf_counter() - t0) * 1000 / len(reqs), 2)
        result["cpu_s_per_1000"][name] = round((time.process_time() - c0) * 1000 / len(reqs), 2)
        own = to_uint8_rgb(render(images, gen.identity.get("house_style")))
        result["fidelity"][name] = float((_logreg(own, labels)(sample) == req_labels).mean())
        train_reqs, train_labels = _requests(train_per_class, 0)
        test_reqs, test_labels = _requests(test_per_class, 50_000_000)
        sets[name] = {
            "train": gen.generate(train_reqs),
            "train_labels": train_labels,
            "test": gen.generate(test_reqs),
            "test_labels": test_labels,
        }
        print(
            f"{name}: {result['speed_s_per_1000'][name]} s wall, {result['cpu_s_per_1000'][name]} s CPU "
            f"per 1000 images; fidelity {result['fidelity'][name]:.3f}",
            flush=True,
        )
    fits = {"logreg": _logreg, "cnn": _cnn}
    for kind in classifiers:
        result["matrices"][kind] = _matrix(sets, fits[kind])
        _print_matrix(f"{variant}, {kind}", result["matrices"][kind])
    return result


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=("styled", "plain", "both"), default="both")
    parser.add_argument("--classifier", choices=("logreg", "cnn", "both"), default="both")
    parser.add_argument("--train-per-class", type=int, default=120)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--world", choices=("digits", "fashion"), default="digits")
    parser.add_argument("--kinds", default="", help="comma-separated sources (ddpm,cfg,...; default all)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    global WORLD, ONLY
    WORLD, ONLY = args.world, [k for k in args.kinds.split(",") if k]
    torch.set_num_threads(args.threads)
    variants = ["styled", "plain"] if args.variant == "both" else [args.variant]
    classifiers = ["logreg", "cnn"] if args.classifier == "both" else [args.classifier]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, torch threads {args.threads}")
    results = [run(v, classifiers, args.train_per_class, args.test_per_class) for v in variants]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
