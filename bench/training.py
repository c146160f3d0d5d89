"""The timm trainer's speed on the CPU in each memory layout and optimizer implementation, through the
trainer an audit runs (`TimmShadowTrainer.train`), on the demo's training size: 1,000 images of 16 px, 12
epochs, one thread (the trainer's default), `test_resnet` at batch 64 and `test_efficientnet` at batch 128
(the demo's shadow and its second suspect architecture). Best of --repeats, the settings interleaved; the
former trainer (both off) is the floor each row is compared with, in the same run.

    .venv/bin/python bench/training.py
    .venv/bin/python bench/training.py --repeats 3 --json out.json
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "former (both off)": {"channels_last": False, "fused_optimizer": False},
    "fused AdamW": {"channels_last": False, "fused_optimizer": True},
    "channels-last": {"channels_last": True, "fused_optimizer": False},
    "both (the default)": {"channels_last": True, "fused_optimizer": True},
}
ARCHS = {"test_resnet": 64, "test_efficientnet": 128}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from trainprove_timm.training import TimmShadowTrainer

    from trainprove_core.task import Task

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1000, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(1000) % 10
    task = Task(tuple(f"c{i}" for i in range(10)), 16)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, batch in ARCHS.items():
            common = {"arch": arch, "epochs": 12, "batch_size": batch, "lr": 0.003, "weight_decay": 0.05}
            common |= {"hflip": False, "crop_scale": (0.7, 1.0), "device": "cpu", "checkpoint_every": 0}
            trainers = {name: TimmShadowTrainer(**common, **extra) for name, extra in SETTINGS.items()}
            trainers["both (the default)"].train(images[:100], labels[:100], task, Path(tmp) / "warm")
            times: dict[str, list[float]] = {name: [] for name in trainers}
            load = os.getloadavg()[0]
            for r in range(args.repeats):
                for name, trainer in trainers.items():
                    t0 = time.perf_counter()
                    trainer.train(images, labels, task, Path(tmp) / f"{arch}-{r}-{len(times[name])}")
                    times[name].append(time.perf_counter() - t0)
            floor = min(times["former (both off)"])
            for name, t in times.items():
                row = {"arch": arch, "setting": name, "seconds": round(min(t), 2)}
                row |= {"speedup": round(floor / min(t), 2)}
                row["load"] = f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
                rows.append(row)
                print(f"{arch:<18} {name:<20} {min(t):6.2f} s  {floor / min(t):.2f}x  (load {row['load']})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
