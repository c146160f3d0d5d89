"""What the framework adds per query, against the bare loop's floor, in the same run (issue 25).

A local timm suspect (`test_resnet`, random weights built here, 10 classes, 16 px) answers a validation set
of --images images through the workspace (`Workspace.answers`: chunks of `batch_size` through the
executor, each saved to a fresh store, merged and committed, label space mapped) and, as the floor, by a
bare loop calling the same adapter's `predict` on the same chunks (same model, same threads). Best of
--repeats, the two interleaved so a change of load hits both. The overhead is framework / floor - 1; the
goal is at most 10%.

    .venv/bin/python bench/query_overhead.py
    PYTHONPATH=<a checkout's root> .venv/bin/python bench/query_overhead.py   # another version of the core

States the machine's load (1-minute average) before and after, with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import timm
    import torch
    from safetensors.torch import save_file
    from trainprove_timm.model import TimmSuspect

    import trainprove_core
    from trainprove_core.audit import Workspace
    from trainprove_core.plugins import load_plugins
    from trainprove_core.records import ImageSet
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    classes = tuple(f"c{i}" for i in range(10))
    task = Task(classes, 16)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 16, 16, 3), dtype=np.uint8)
    image_set = ImageSet("validation", "bench-set", images, rng.integers(0, 10, args.images), {"bench": 1})
    plugins = load_plugins()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "suspect"
        folder.mkdir()
        torch.manual_seed(0)
        model = timm.create_model("test_resnet", pretrained=False, num_classes=10)
        save_file(model.state_dict(), str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({"architecture": "test_resnet", "num_classes": 10}))
        settings = {"checkpoint": str(folder), "arch": None, "label_names": None, "mean": None, "std": None}
        settings |= {"batch_size": args.batch_size, "device": "cpu", "threads": args.threads}
        suspect = TimmSuspect.from_settings(settings, task)
        suspect.predict(images[: args.batch_size])  # warm: first-call costs are no one's overhead

        def floor() -> None:
            for start in range(0, len(images), args.batch_size):
                suspect.predict(images[start : start + args.batch_size])

        def framework(i: int) -> None:
            store = Store(Path(tmp) / f"store-{i}")
            with Workspace.open(task, plugins, store, show_progress=False) as ws:
                ws.answers("suspect", suspect, image_set)

        floors, frameworks = [], []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            floor()
            floors.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            framework(i)
            frameworks.append(time.perf_counter() - t0)
    load_after = os.getloadavg()[0]
    best_floor, best_framework = min(floors), min(frameworks)
    result = {
        "core": str(Path(trainprove_core.__file__).parent),
        "images": args.images,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "floor_s": round(best_floor, 4),
        "framework_s": round(best_framework, 4),
        "overhead": round(best_framework / best_floor - 1, 4),
        "per_query_us": round((best_framework - best_floor) / args.images * 1e6, 1),
        "load": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    print(
        f"{args.images} images in chunks of {args.batch_size}, {args.threads} thread(s): floor "
        f"{best_floor:.3f} s, framework {best_framework:.3f} s, overhead {result['overhead']:+.1%} "
        f"({result['per_query_us']} us a query); load {load_before:.2f} -> {load_after:.2f} on "
        f"{os.cpu_count()} CPUs; core {result['core']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
