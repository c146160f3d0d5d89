"""What an audit costs as it grows: 1, 10, 100 suspects, 1× and 4× the validation set, cold and warm.

Every audit is `trainprove audit` run as a user runs it (a fresh process: start-up and plugin loading
included), by one embedded digit generator (default digits-gmm) over small timm suspects of the benchmark
pool (runs/bench-pool, `bench/suspect_pool.py`), with seven cheap decision tests. Per size:

- **cold**: a fresh store holding only the shadow set and model (trained once, in a first full cold
  audit of one suspect, printed; `--train-cold`: none), so the validation set is made and every suspect
  loaded and queried;
- **warm**: the same command again;
- **one more**: the same audit with one more suspect, on the warm store.

Next to them, the **floor**, measured in the same run: the same queries made by a bare loop over the same
models (timm.create_model, load the safetensors, one forward pass per 256 images, as many torch threads
as the timm adapter picks; no framework), best of two. It prints the marginal cost per suspect (between
the two largest sizes) and per query (between 1× and 4× the validation set), and the three goals of
issue 13: report ≤ 5% of a cold audit, one added suspect ≤ 5% of the cold audit plus its own queries,
framework overhead per query ≤ 10% of the floor.

    .venv/bin/python bench/audit_scale.py --quick              # 1 and 10 suspects, 1× and 4×
    .venv/bin/python bench/audit_scale.py                      # 1, 10, 100 suspects
    .venv/bin/python bench/audit_scale.py --sizes 78 --factors 1 --json before.json   # any code: CLI only

The audits' own phase times (report.json's `timings`, where the code writes them) are printed with each.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = (
    {"use": "trainprove"},
    {"use": "trainprove", "name": "trainprove (paper_compat)", "paper_compat": True},
    {"use": "trainprove-ent"},
    {"use": "trainprove-sim"},
    {"use": "accuracy-threshold"},
    {"use": "welch"},
    {"use": "random-guess"},
)
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SHADOW = {
    "prompt": "a {label}",
    "per_class": 100,
    "trainer": "timm",
    "arch": "test_resnet",
    "epochs": 12,
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "seed": 0,
    "hflip": False,
    "crop_scale": [0.7, 1.0],
}
VALIDATION_PER_CLASS = 160  # 1×: 1,600 images in batches of 64 (n = 25), as the demo


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def audit_toml(generator: str, suspects: Sequence[Mapping[str, Any]], factor: int) -> str:
    """The audit file of `generator` over `suspects` (pool manifest records), validation set × `factor`."""
    lines = ["seed = 2025", "", "[task]", f"classes = {toml_value(CLASSES)}", "image_size = 16", ""]
    lines += ["[generator]", f"use = {toml_value(generator)}", "", "[shadow]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in SHADOW.items()]
    lines += ["", "[validation]", 'prompt = "a photo of a {label}"']
    lines += [f"per_class = {VALIDATION_PER_CLASS * factor}", "batch_size = 64"]
    for s in suspects:
        lines += ["", "[[suspect]]", f"name = {toml_value(s['name'])}", 'use = "timm"']
        lines += [f"checkpoint = {toml_value(s['adapter']['checkpoint'])}"]
    for t in TESTS:
        lines += ["", "[[test]]"] + [f"{k} = {toml_value(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def timm_suspects(pool: Path, count: int) -> list[dict[str, Any]]:
    manifest = json.loads((pool / "manifest.json").read_text(encoding="utf-8"))
    suspects = [s for s in manifest["suspects"] if s["format"] == "timm"]
    if len(suspects) < count:
        raise SystemExit(f"{pool}/manifest.json lists {len(suspects)} timm suspects; {count} asked for")
    return suspects[:count]


def run_cli(audit_file: Path, out_dir: Path, store: Path) -> dict[str, Any]:
    """`trainprove audit` in a fresh process; its wall time, and what its report.json says."""
    command = [str(Path(sys.executable).with_name("trainprove")), "audit", str(audit_file)]
    command += ["--out", str(out_dir), "--store", str(store), "--no-progress"]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    last = [line for line in done.stdout.splitlines() if line.strip()]
    return {
        "seconds": round(seconds, 2),
        "timings": report.get("timings"),
        "counts": report.get("counts"),
        "summary_line": next((line for line in reversed(last) if line.startswith("audit:")), None),
        "validation_key": report["manifest"]["hashes"]["validation_set"],
        "validation_images": report["validation"]["images"],
    }


def floor(suspects: Sequence[Mapping[str, Any]], store: Path, validation_key: str) -> dict[str, float]:
    """The same queries by a bare loop: load each model, one forward pass per 256 validation images."""
    import numpy as np
    import timm
    import torch
    from safetensors.torch import load_file

    # The threads the timm adapter picks (its `threads = 0`): the cores the load leaves idle, at least 1.
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, min(cores, int(cores - os.getloadavg()[0] + 0.5))))
    with np.load(store / "image-sets" / validation_key / "data.npz") as data:
        images = data["images"]
    load = predict = 0.0
    for s in suspects:
        folder = Path(s["adapter"]["checkpoint"])
        t0 = time.perf_counter()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        model = timm.create_model(config["architecture"], pretrained=False, num_classes=len(CLASSES))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        model.eval()
        t1 = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(images), 256):
                x = torch.from_numpy(images[start : start + 256]).permute(0, 3, 1, 2).float().div_(255.0)
                torch.softmax(model((x - 0.5) / 0.5), dim=1).numpy().argmax(axis=1)
        load += t1 - t0
        predict += time.perf_counter() - t1
    return {"load": load, "predict": predict}


def phase(result: Mapping[str, Any], name: str) -> float | None:
    timings = result.get("timings") or {}
    value = timings.get(name)
    if isinstance(value, dict):
        return sum(value.values())
    return value


def seed_store(pool: Path, work: Path, generator: str) -> tuple[Path, str, dict[str, Any]]:
    """A store holding the shadow set and the shadow model (a full cold audit of one suspect): every cold
    run starts from a copy of it, so the shadow is trained once (its cost does not grow with suspects or
    queries, and on a loaded machine it dwarfs and blurs everything else)."""
    here = work / "seed"
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    (here / "audit.toml").write_text(audit_toml(generator, timm_suspects(pool, 1), 1), encoding="utf-8")
    result = run_cli(here / "audit.toml", here / "out", here / "store")
    report = json.loads((here / "out" / "report.json").read_text(encoding="utf-8"))
    return here / "store", report["manifest"]["hashes"]["shadow_set"], result


def measure(
    pool: Path,
    work: Path,
    generator: str,
    size: int,
    factor: int,
    one_more: bool,
    seed: tuple[Path, str] | None,
) -> dict[str, Any]:
    """Cold, warm and one-more-suspect runs of the audit of `size` suspects at `factor` × validation;
    cold starts from a copy of the `seed` store (the shadow set and model), or empty."""
    suspects = timm_suspects(pool, size + 1)
    here = work / f"n{size}-x{factor}"
    store = here / "store"
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    if seed is not None:
        seed_dir, shadow_set = seed
        shutil.copytree(seed_dir / "models", store / "models")
        shutil.copytree(seed_dir / "image-sets" / shadow_set, store / "image-sets" / shadow_set)
    audit = here / "audit.toml"
    audit.write_text(audit_toml(generator, suspects[:size], factor), encoding="utf-8")
    row: dict[str, Any] = {"suspects": size, "factor": factor}
    row["cold"] = run_cli(audit, here / "out", store)
    row["warm"] = run_cli(audit, here / "out", store)
    if one_more:
        more = here / "audit-plus-one.toml"
        more.write_text(audit_toml(generator, suspects, factor), encoding="utf-8")
        row["one_more"] = run_cli(more, here / "out-plus-one", store)
    key = row["cold"]["validation_key"]
    runs = [floor(suspects[:size], store, key) for _ in range(2)]
    row["floor"] = {k: round(min(r[k] for r in runs), 3) for k in ("load", "predict")}
    row["floor_one"] = {k: round(v / size, 4) for k, v in row["floor"].items()}
    row["queries"] = size * row["cold"]["validation_images"]
    shutil.rmtree(store, ignore_errors=True)  # the next size starts cold
    return row


def describe(row: Mapping[str, Any]) -> str:
    parts = [f"{row['suspects']:>4} suspects ×{row['factor']}:"]
    for run in ("cold", "warm", "one_more"):
        if run in row:
            r = row[run]
            extra = ""
            if r.get("timings"):
                shown = ("generation", "training", "model_loading", "queries", "decisions", "report")
                extra = " (" + ", ".join(f"{k} {phase(r, k):.1f}" for k in shown if phase(r, k) is not None)
                extra += ")"
            parts.append(f"{run} {r['seconds']:.1f} s{extra}")
    f = row["floor"]
    parts.append(f"floor load {f['load']:.1f} s + queries {f['predict']:.1f} s")
    return "\n    ".join(parts)


def goals(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The figures and the three goals, from the largest size (and 1× vs 4× where both ran)."""
    lines = []
    by = {(r["suspects"], r["factor"]): r for r in rows}
    sizes = sorted({r["suspects"] for r in rows})
    big = by.get((sizes[-1], 1)) or rows[-1]
    if len(sizes) >= 2 and (sizes[-2], 1) in by:
        small = by[(sizes[-2], 1)]
        marginal = (big["cold"]["seconds"] - small["cold"]["seconds"]) / (big["suspects"] - small["suspects"])
        lines.append(
            f"marginal cost per suspect (cold, {small['suspects']}→{big['suspects']}, 1×): {marginal:.3f} s; "
            f"floor per suspect {big['floor_one']['load'] + big['floor_one']['predict']:.3f} s "
            f"(load {big['floor_one']['load']:.3f} + queries {big['floor_one']['predict']:.3f})"
        )
    for size in sizes:
        if (size, 1) in by and (size, 4) in by:
            a, b = by[(size, 1)], by[(size, 4)]
            extra = b["queries"] - a["queries"]
            per_query = (b["cold"]["seconds"] - a["cold"]["seconds"]) / extra if extra else float("nan")
            floor_q = (b["floor"]["predict"] - a["floor"]["predict"]) / extra if extra else float("nan")
            line = (
                f"marginal cost per query (cold, {size} suspects, 1×→4×): {per_query * 1e6:.1f} µs of wall "
                f"time (with 3× more validation images made)"
            )
            qa, qb = phase(a["cold"], "queries"), phase(b["cold"], "queries")
            if qa is not None and qb is not None:
                line += f", {(qb - qa) / extra * 1e6:.1f} µs of `queries`"
            lines.append(line + f"; floor {floor_q * 1e6:.1f} µs")
    cold = big["cold"]
    report = phase(cold, "report")
    if report is not None:
        share = report / cold["seconds"]
        lines.append(
            f"goal report ≤ 5% of a cold {big['suspects']}-suspect audit: {report:.2f} s of "
            f"{cold['seconds']:.1f} s = {share:.1%} {'✓' if share <= 0.05 else '✗'}"
        )
    if "one_more" in big:
        own = big["floor_one"]["load"] + big["floor_one"]["predict"]
        budget = 0.05 * cold["seconds"] + own
        spent = big["one_more"]["seconds"]
        lines.append(
            f"goal one added suspect ≤ 5% of the cold audit + its own load and queries: {spent:.1f} s vs "
            f"{0.05 * cold['seconds']:.1f} + {own:.2f} = {budget:.1f} s ({spent / cold['seconds']:.1%} of "
            f"cold) {'✓' if spent <= budget else '✗'}"
        )
    queries = phase(cold, "queries")
    loading = phase(cold, "model_loading")
    if queries is not None:
        f = big["floor"]
        overhead = queries / f["predict"] - 1
        lines.append(
            f"goal framework overhead per query ≤ 10% of the floor: queries {queries:.2f} s vs bare loop "
            f"{f['predict']:.2f} s: {overhead:+.1%} {'✓' if overhead <= 0.10 else '✗'}"
            + (
                f"; model loading {loading:.2f} s vs bare loop {f['load']:.2f} s"
                if loading is not None
                else ""
            )
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 suspects (with --sizes unset)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="numbers of suspects")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4], help="validation set × factor")
    parser.add_argument("--generator", default="digits-gmm")
    parser.add_argument("--pool", type=Path, default=ROOT / "runs" / "bench-pool")
    parser.add_argument("--work", type=Path, default=None, help="working folder [default: a temporary one]")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--seed", type=Path, default=None, help="the seed folder (store + out/) of an earlier run to reuse"
    )
    parser.add_argument(
        "--train-cold", action="store_true", help="every cold run trains the shadow too (no seed store)"
    )
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1, 10] if args.quick else [1, 10, 100])
    work = args.work or Path(tempfile.mkdtemp(prefix="audit-scale-"))
    started = time.time()
    load = os.getloadavg()
    print(f"audit_scale: {args.generator}, sizes {sizes}, validation × {args.factors}; load {load}")
    rows = []
    seed = None
    if args.seed:
        report = json.loads((args.seed / "out" / "report.json").read_text(encoding="utf-8"))
        seed = (args.seed / "store", report["manifest"]["hashes"]["shadow_set"])
        print(f"  seed store: {args.seed}")
    elif not args.train_cold:
        seed_dir, shadow_set, first = seed_store(args.pool, work, args.generator)
        seed = (seed_dir, shadow_set)
        print(f"  seed store (a full cold audit of 1 suspect, the shadow trained): {first['seconds']:.1f} s")
        if first.get("timings"):
            shown = ", ".join(f"{k} {v:.1f}" for k, v in first["timings"].items() if isinstance(v, float))
            print(f"    ({shown})", flush=True)
    for factor in args.factors:
        for size in sizes:
            row = measure(args.pool, work, args.generator, size, factor, factor == 1, seed)
            rows.append(row)
            print("  " + describe(row), flush=True)
    lines = goals(rows)
    print("\n".join(lines))
    end_load = os.getloadavg()
    print(f"load average at start {load}, at end {end_load}; {time.time() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "goals": lines, "load": [load, end_load]}, indent=2), encoding="utf-8"
        )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
