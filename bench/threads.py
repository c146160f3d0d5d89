"""Each torch phase at 1 thread, at torch's default (one per core) and at the threads policy
(`trainprove_core.threads`), as the machine is and under a synthetic load of busy-loop processes this
script starts and stops; the floor (the best fixed count, 1 or the core count) measured in the same run.

Phases, each through the code an audit runs: generation (the embedded `digits-ddpm` generator's
`generate`), inference (the timm adapter's `predict`, resnet18 at 32 px) and training (the timm trainer,
`test_resnet` at 16 px; its count is part of the model's identity, so its policy is its fixed `threads`,
1 by default). The counts are forced through `$TRAINPROVE_THREADS` (generation, inference) or the
trainer's `threads`, so the policy is measured exactly as an audit picks it. Best of --repeats, the three
settings interleaved. The load (1-minute average and tasks running) is printed with every figure: the
machine may be shared.

    .venv/bin/python bench/threads.py                 # as the machine is, then with 8 busy processes
    .venv/bin/python bench/threads.py --busy 8 --json out.json
    .venv/bin/python bench/threads.py --generators    # every embedded generator at 1 and CORES threads

`--generators` measures only generation, for each embedded network generator (1,024 images, best of
--repeats, as the machine is): whether a second thread helps networks this small (it decides the
embedded generators' thread count).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainprove_core import threads  # noqa: E402

CORES = len(os.sched_getaffinity(0))


def spin() -> None:  # a busy-loop process of the synthetic load
    while True:
        pass


def load_now() -> str:
    return f"load {os.getloadavg()[0]:.1f}, {threads.running_now()} running"


def phases(tmp: Path):
    """name -> (run(count) where count is a thread count or 0 for the policy, what the policy picks)."""
    import timm
    import torch
    from safetensors.torch import save_file
    from trainprove_timm.model import TimmSuspect
    from trainprove_timm.training import TimmShadowTrainer

    from trainprove_core.config import validate_table
    from trainprove_core.plugins import load_plugins
    from trainprove_core.records import GenerationRequest
    from trainprove_core.task import Task

    plugins = load_plugins()

    def forced(count: int):
        if count:
            os.environ[threads.ENV] = str(count)
        else:
            os.environ.pop(threads.ENV, None)

    registered = plugins.get("generator", "digits-ddpm")
    options = registered.spec.options
    generator = registered.spec.factory(validate_table({}, options, source="bench", where="generator"))
    requests = [GenerationRequest("a digit", i % 10, str(i % 10), 7000 + i) for i in range(96)]

    def generation(count: int) -> None:
        forced(count)
        generator.generate(requests)

    folder = tmp / "resnet18"
    folder.mkdir()
    torch.manual_seed(0)
    save_file(timm.create_model("resnet18", num_classes=10).state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 10}))
    task32 = Task(tuple(f"c{i}" for i in range(10)), 32)
    settings = {"checkpoint": str(folder), "arch": None, "label_names": None, "mean": None, "std": None}
    settings |= {"batch_size": 128, "device": "cpu", "threads": 0}
    suspect = TimmSuspect.from_settings(settings, task32)
    images32 = np.random.default_rng(0).integers(0, 256, (512, 32, 32, 3), dtype=np.uint8)

    def inference(count: int) -> None:
        forced(count)
        suspect.predict(images32)

    task16 = Task(tuple(f"c{i}" for i in range(10)), 16)
    images16 = np.random.default_rng(1).integers(0, 256, (300, 16, 16, 3), dtype=np.uint8)
    labels16 = np.arange(300) % 10
    table = plugins.get("shadow-trainer", "timm").spec
    small = {"arch": "test_resnet", "epochs": 2, "batch_size": 64}
    base = validate_table(small, table.options, source="bench", where="shadow")
    runs = iter(range(10**6))

    def training(count: int) -> None:
        trainer = table.factory({**base, "threads": count or base["threads"]})
        assert isinstance(trainer, TimmShadowTrainer)
        trainer.train(images16, labels16, task16, tmp / f"model-{next(runs)}")

    policy_training = base["threads"]
    return {
        "generation": (generation, lambda: threads.count()),
        "inference": (inference, lambda: threads.count()),
        "training": (training, lambda: policy_training),
    }


def measure(run, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"1": [], "default": [], "policy": []}
    for _ in range(repeats):
        for name, count in (("1", 1), ("default", CORES), ("policy", 0)):
            t0 = time.perf_counter()
            run(count)
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


EMBEDDED = (
    "digits-ddpm",
    "digits-cfg",
    "digits-vae",
    "digits-gan",
    "fashion-ddpm",
    "fashion-cfg",
    "fashion-vae",
    "fashion-gan",
)


def generators(repeats: int) -> list[dict]:
    """Each embedded network generator's images per second at 1 thread and at the core count (torch's
    default), forced through $TRAINPROVE_THREADS, interleaved."""
    from trainprove_core.config import validate_table
    from trainprove_core.plugins import load_plugins
    from trainprove_core.records import GenerationRequest

    plugins = load_plugins()
    requests = [GenerationRequest("a class", i % 10, str(i % 10), 9000 + i) for i in range(1024)]
    rows = []
    for name in EMBEDDED:
        spec = plugins.get("generator", name).spec
        generator = spec.factory(validate_table({}, spec.options, source="bench", where="generator"))
        generator.generate(requests[:128])  # warm: the network's load is no setting's
        times: dict[int, list[float]] = {1: [], CORES: []}
        before = load_now()
        for _ in range(repeats):
            for count in times:
                os.environ[threads.ENV] = str(count)
                t0 = time.perf_counter()
                generator.generate(requests)
                times[count].append(time.perf_counter() - t0)
        os.environ.pop(threads.ENV, None)
        rate = {count: len(requests) / min(v) for count, v in times.items()}
        row = {"generator": name, "load_before": before, "load_after": load_now()}
        row |= {f"images_per_s_{c}": round(r) for c, r in rate.items()}
        rows.append(row)
        print(
            f"{name:<13} 1 thread {rate[1]:7.0f} img/s, {CORES} threads {rate[CORES]:7.0f} img/s "
            f"({rate[1] / rate[CORES]:.2f}x); {before} -> {row['load_after']}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=8, help="busy-loop processes of the synthetic load")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to let the load start")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--generators", action="store_true", help="only the embedded generators, as is")
    args = parser.parse_args()
    if args.generators:
        rows = generators(max(args.repeats, 3))
        if args.json:
            args.json.write_text(json.dumps({"cores": CORES, "generators": rows}, indent=2))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = phases(Path(tmp))
        for run, _ in work.values():
            run(1)  # warm: first-call costs are no setting's
        for condition in ("as is", f"+{args.busy} busy"):
            spinners = []
            if condition != "as is":
                spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
                for p in spinners:
                    p.start()
                time.sleep(args.settle)
            try:
                for name, (run, picks) in work.items():
                    before = load_now()
                    os.environ.pop(threads.ENV, None)
                    picked = picks()
                    best = measure(run, args.repeats)
                    floor = min(best["1"], best["default"])
                    row = {
                        "phase": name,
                        "condition": condition,
                        "load_before": before,
                        "load_after": load_now(),
                        "policy_threads": picked,
                        **{f"{k}_s": round(v, 3) for k, v in best.items()},
                        "floor_s": round(floor, 3),
                        "policy_over_floor": round(best["policy"] / floor, 2),
                    }
                    rows.append(row)
                    print(
                        f"{condition:>9} {name:<10} 1 thread {best['1']:6.2f} s, {CORES} (default) "
                        f"{best['default']:6.2f} s, policy ({picked}) {best['policy']:6.2f} s = "
                        f"{row['policy_over_floor']:.2f}x the floor; {before} -> {row['load_after']}",
                        flush=True,
                    )
            finally:
                for p in spinners:
                    p.terminate()
                for p in spinners:
                    p.join()
    if args.json:
        args.json.write_text(json.dumps({"cores": CORES, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
