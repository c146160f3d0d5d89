"""What the Ray executor costs and gives against the local one, on this machine.

    .venv/bin/python bench/executors.py [--json OUT] [--quick]

Runs itself inside a network namespace with only loopback (`unshare -n`, as root; Ray listens on every
interface otherwise) and prints four figures, each against a floor measured in the same run:

1. overhead per chunk: tiny work items (4 images of 8x8 from `testing.ContractGenerator`) through the
   local executor and through a warm Ray pool (one worker), seconds per item;
2. cold-worker cost: a fresh Ray pool's first result from a real model (the digits-ddpm generator:
   a process start, imports, the model's load, one chunk) against the same first chunk locally;
3. a small demo-like audit set, end to end (four suspects trained on two embedded generators, then two
   audits of all four with the calibrated rule off), on the local executor, on Ray with one worker (a
   one-CPU cluster), and on Ray with two (a two-CPU cluster): wall seconds and the speed-up of 2 over 1;
4. the machine's load (`os.getloadavg`) before and after, since other work on it skews every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETNS_ENV = "TRAINPROVE_BENCH_NETNS"
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAINER = {"arch": "test_resnet", "epochs": 4, "batch_size": 32, "hflip": False, "crop_scale": [0.7, 1.0]}


def reexec_in_namespace() -> None:
    if os.environ.get(NETNS_ENV) == "1":
        return
    if shutil.which("unshare") is None:
        sys.exit("bench/executors.py needs `unshare` (util-linux) to keep Ray on loopback")
    args = " ".join(f"'{a}'" for a in [sys.executable, *sys.argv])
    env = {**os.environ, NETNS_ENV: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {args}"], env=env))


def chunk_overhead(n: int) -> dict[str, float]:
    from trainprove_core.audit import open_executor
    from trainprove_core.executors import LocalExecutor
    from trainprove_core.plugins import load_plugins
    from trainprove_core.testing import contract_work

    plugins = load_plugins()
    works = [w for w in contract_work(n_chunks=n) if w.kind == "generate"]
    local = LocalExecutor()
    t = time.perf_counter()
    list(local.run(works))
    local_s = (time.perf_counter() - t) / n
    ex = open_executor(plugins, "ray", {"workers": 1})
    list(ex.run(works[:2]))  # warm: the pool exists and has built its model
    t = time.perf_counter()
    list(ex.run(works))
    ray_s = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for work in works[:20]:  # one at a time: the round trip of a lone item
        list(ex.run([work]))
    alone_s = (time.perf_counter() - t) / 20
    ex.close()
    return {
        "items": n,
        "local_s_per_item": local_s,
        "ray_s_per_item": ray_s,
        "overhead_s": ray_s - local_s,
        "ray_s_per_lone_item": alone_s,
    }


def cold_worker() -> dict[str, float]:
    from trainprove_core.audit import open_executor
    from trainprove_core.executors import ModelCache, execute
    from trainprove_core.plugins import load_plugins
    from trainprove_core.records import ModelRef, Work
    from trainprove_core.testing import requests

    plugins = load_plugins()
    spec = plugins.get("generator", "digits-ddpm").spec
    from trainprove_core.config import validate_table

    settings = validate_table({"batch_size": 4}, spec.options, source="bench", where="generator")
    ref = ModelRef("generator", "digits-ddpm", settings, spec.factory)
    work = Work("generate", ref, (requests(range(4), CLASSES), 16), 4, 0, "generate bench set")
    t = time.perf_counter()
    execute(work, ModelCache())
    local_first = time.perf_counter() - t
    t = time.perf_counter()
    execute(work, cache := ModelCache())
    execute(work, cache)
    t2 = time.perf_counter()
    execute(work, cache)
    warm_chunk = time.perf_counter() - t2
    ex = open_executor(plugins, "ray", {"workers": 1})
    t = time.perf_counter()
    list(ex.run([work]))
    ray_first = time.perf_counter() - t
    ex.close()
    return {
        "local_first_chunk_s": local_first,
        "warm_chunk_s": warm_chunk,
        "ray_cold_first_chunk_s": ray_first,
    }


def audit_set(executor: str, settings: dict, root: Path) -> dict[str, float]:
    """Four suspects trained on two generators, two audits of all four, in a fresh store."""
    from trainprove_core.audit import Workspace, open_executor, run_audit
    from trainprove_core.config import ImageSetConfig, config_from_dict
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    plugins = load_plugins()
    store = Store(root / "store")
    started = time.perf_counter()
    ex = open_executor(plugins, executor, settings)
    try:
        ws = Workspace(Task(CLASSES, 16), plugins, store, ex, show_progress=False)
        pairs, names = [], []
        for s, source in enumerate(("digits-gmm", "digits-vae")):
            gen = ws.generator(ws.plugin_table("generator", source, {}))
            images = ws.image_set(f"suspects {source}", gen, ImageSetConfig("an image of a {label}", 30, s))
            for v in range(2):
                table = ws.plugin_table("shadow-trainer", "timm", {**TRAINER, "train_seed": 10 + v})
                pairs.append((table, images))
                names.append(f"{source}-{v}")
        made = ws.trained_models(pairs)
        pool = {n: str(m[0]) for n, m in zip(names, made, strict=True)}
        verdicts = []
        for defender in ("digits-gmm", "digits-vae"):
            doc = {
                "task": {"classes": list(CLASSES), "image_size": 16},
                "generator": {"use": defender},
                "shadow": {"prompt": "a {label}", "per_class": 30, **TRAINER},
                "validation": {"prompt": "a photo of a {label}", "per_class": 20, "batch_size": 40},
                "suspect": [
                    {"name": n, "use": "timm", "checkpoint": p, "batch_size": 50} for n, p in pool.items()
                ],
            }
            report = run_audit(
                config_from_dict(doc, plugins), plugins, root / defender, store, False, executor=ex
            )
            verdicts += [(v["suspect"], v["decision"]) for v in report.report["verdicts"]]
    finally:
        ex.close()
    return {"wall_s": time.perf_counter() - started, "verdicts": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--quick", action="store_true", help="fewer chunks, no audit set")
    args = parser.parse_args()
    reexec_in_namespace()
    import ray
    import torch

    torch.set_num_threads(1)
    out: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out["chunk_overhead"] = chunk_overhead(50 if args.quick else 200)
    out["cold_worker"] = cold_worker()
    ray.shutdown()
    if not args.quick:
        sets = {}
        with tempfile.TemporaryDirectory() as tmp:
            sets["local"] = audit_set("local", {}, Path(tmp) / "local")
            for cpus in (1, 2):
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
                sets[f"ray-{cpus}"] = audit_set("ray", {"workers": cpus}, Path(tmp) / f"ray{cpus}")
                ray.shutdown()
        same = sets["local"]["verdicts"] == sets["ray-1"]["verdicts"] == sets["ray-2"]["verdicts"]
        out["audit_set"] = {k: round(v["wall_s"], 1) for k, v in sets.items()}
        out["audit_set"]["speedup_2_over_1"] = round(sets["ray-1"]["wall_s"] / sets["ray-2"]["wall_s"], 2)
        out["audit_set"]["same_verdicts"] = same
    out["load_after"] = os.getloadavg()
    c, w = out["chunk_overhead"], out["cold_worker"]
    load = f"load {out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after"
    print(f"machine: {out['cpus']} CPUs, {load}")
    print(
        f"overhead per chunk: {1000 * c['overhead_s']:.1f} ms (local {1000 * c['local_s_per_item']:.2f} "
        f"ms/item, Ray {1000 * c['ray_s_per_item']:.1f} ms/item, {c['items']} items at once, one warm "
        f"worker; a lone item's round trip {1000 * c['ray_s_per_lone_item']:.1f} ms)"
    )
    print(
        f"cold worker (digits-ddpm, 4 images): Ray first chunk {w['ray_cold_first_chunk_s']:.1f} s; "
        f"local first chunk {w['local_first_chunk_s']:.1f} s, warm chunk {w['warm_chunk_s']:.2f} s"
    )
    if "audit_set" in out:
        a = out["audit_set"]
        print(
            f"audit set (4 suspects trained, 2 audits): local {a['local']} s, Ray 1 worker {a['ray-1']} s, "
            f"Ray 2 workers {a['ray-2']} s: speed-up {a['speedup_2_over_1']}x; "
            f"same verdicts: {a['same_verdicts']}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
