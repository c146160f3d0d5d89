"""What checking the store's content hashes costs, against the floor of reading the same artifact anyway.

Realistic artifacts, built here: a CIFAR-10-sized validation set (5,000 images of 32 px), an
ImageNet-sized one (1,000 images of 224 px), a suspect's answers on 5,000 images (labels and 10
probabilities), and a ResNet-18 shadow model (timm, 10 classes, safetensors). For each: committing it
(`Store.chunked` from nothing: saving 128-row chunks, each fsynced, merging them, hashing; `Store.directory`
for the model), the SHA-256 of its files alone (what checking adds, at commit and on each read), and
reading it back from the store, checked (`Store.chunked` of a finished artifact: SHA-256 of data.npz,
then np.load; `Store.finished` for the model: SHA-256 of every file), next to the floor (np.load of the
same data.npz; opening the model with the timm adapter, which reads and hashes its weights anyway), and
`Store.verify()` of the whole store. Best of --repeats, page cache warm (a re-run reads what it just
wrote or read).

    .venv/bin/python bench/store.py
    .venv/bin/python bench/store.py --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainprove_core.store import DATA, Store, file_sha256, load_npz  # noqa: E402


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def chunks_of(arrays: dict[str, np.ndarray], size: int):
    n = len(next(iter(arrays.values())))
    index = list(range(0, n, size))

    def run(pending):
        for i in pending:
            yield i, {k: v[index[i] : index[i] + size] for k, v in arrays.items()}

    return index, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sets = {
        "validation set, 5,000 x 32 px": {
            "images": rng.integers(0, 256, (5000, 32, 32, 3), dtype=np.uint8),
            "labels": rng.integers(0, 10, 5000),
        },
        "image set, 1,000 x 224 px": {
            "images": rng.integers(0, 256, (1000, 224, 224, 3), dtype=np.uint8),
            "labels": rng.integers(0, 10, 1000),
        },
        "answers, 5,000 x 10 classes": {
            "labels": rng.integers(0, 10, 5000),
            "probabilities": rng.random((5000, 10), dtype=np.float32),
        },
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        rows += [_image_like(store, name, arrays, args.repeats) for name, arrays in sets.items()]
        rows.append(_model(store, args.repeats))
        verify = best(lambda: store.verify(), args.repeats)
    total_mb = sum(r["mb"] for r in rows)
    result = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "rows": rows,
        "verify_whole_store_s": round(verify, 4),
        "store_mb": round(total_mb, 1),
    }
    print(f"{'artifact':<30} {'MB':>6} {'commit':>9} {'sha256':>8} {'floor':>8} {'checked':>8} {'added':>6}")
    for r in rows:
        ms = [f"{r[k] * 1000:>6.1f}ms" for k in ("commit_s", "sha256_s", "floor_read_s", "checked_read_s")]
        added = (r["checked_read_s"] - r["floor_read_s"]) / r["floor_read_s"] if r["floor_read_s"] else 0
        if r["artifact"].startswith("model"):
            added = r["checked_read_s"] / r["floor_read_s"]  # the check is a step before opening
        print(f"{r['artifact']:<30} {r['mb']:>6} {ms[0]:>9} {' '.join(ms[1:])} {added * 100:>5.0f}%")
    print(f"store verify, {total_mb:.0f} MB in {len(rows)} entries: {verify * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _image_like(store: Store, name: str, arrays: dict[str, np.ndarray], repeats: int) -> dict:
    """An image set or answers: made from 128-row chunks, then read back (floor: np.load; checked)."""
    index, run = chunks_of(arrays, 128)
    identity = {"bench": name}
    commit = best(lambda: _commit_fresh(store, identity, index, run), repeats)
    path = store.location("sets", identity) / DATA
    return {
        "artifact": name,
        "mb": round(path.stat().st_size / 1e6, 1),
        "commit_s": round(commit, 4),
        "sha256_s": round(best(lambda: file_sha256(path), repeats), 4),
        "floor_read_s": round(best(lambda: load_npz(path), repeats), 4),
        "checked_read_s": round(best(lambda: store.chunked("sets", identity, index, run), repeats), 4),
    }


def _commit_fresh(store: Store, identity, index, run) -> None:
    import shutil

    shutil.rmtree(store.location("sets", identity), ignore_errors=True)
    store.chunked("sets", identity, index, run)


def _model(store: Store, repeats: int) -> dict:
    """A ResNet-18 shadow: checking its directory against opening it with the timm adapter (the floor)."""
    import torch
    from trainprove_timm.model import TimmSuspect
    from trainprove_timm.training import build_model, save_checkpoint

    from trainprove_core.task import Task

    torch.set_num_threads(1)
    task = Task(tuple(f"c{i}" for i in range(10)), 32)
    model = build_model("resnet18", 10, 32)
    identity = {"bench": "resnet18"}
    t0 = time.perf_counter()
    directory = store.directory("models", identity, lambda tmp: save_checkpoint(model, "resnet18", task, tmp))
    commit = time.perf_counter() - t0
    settings = {"checkpoint": str(directory), "arch": None, "label_names": None, "mean": None, "std": None}
    settings.update(batch_size=64, device="cpu")
    floor = best(lambda: TimmSuspect.from_settings(settings, task), repeats)
    checked = best(lambda: store.finished("models", identity), repeats)
    files = list(directory.iterdir())
    return {
        "artifact": "model, ResNet-18 (timm)",
        "mb": round(sum(p.stat().st_size for p in files) / 1e6, 1),
        "commit_s": round(commit, 4),
        "sha256_s": round(best(lambda: [file_sha256(p) for p in files if p.name != "meta.json"], repeats), 4),
        "floor_read_s": round(floor, 4),
        "checked_read_s": round(checked, 4),
    }


if __name__ == "__main__":
    main()
