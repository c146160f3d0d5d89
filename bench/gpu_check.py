"""The GPU check (issue 25, item 6): one command that, on a CUDA machine with no model hub, measures the
four diffusion backends against plain diffusers and runs one audit end to end at CIFAR-10 size, within
about 10 minutes; with --tiny it runs the same steps on the CPU at tiny size (what the test suite does).

1. `bench/generators.py`: each backend (stable-diffusion-v1-4, latent-consistency, pixart-alpha,
   stable-cascade) built at full size from its public config with random weights, images/s of plain
   diffusers and of trainprove's generator in the same run, and their pixel difference at the same seeds
   (Stable Cascade's must be 0: its GPU output once differed by up to 255).
2. One audit as a user runs it (`trainprove audit`, its own process): a latent-consistency pipeline at full
   size with random weights saved with `save_pretrained` as the defender's generator, the 10 CIFAR-10
   classes at 32 px, 300 shadow and 500 validation images per class, a ResNet-18 shadow (timm), two timm
   ResNet-18 suspects (random weights); the audit's own timings per phase (report.json).

Writes to --out: generators.json, audit/ (audit.toml, report.json), summary.json and summary.md (the
goals: every backend >= 2x plain at equal output, Stable Cascade equal, the whole check <= 10 minutes).
Exit status 0 when every step ran (a goal missed is reported, not an error); 1 when a step failed.

    .venv/bin/python bench/gpu_check.py --out docs/generators/gpu-check     # CUDA, full size
    .venv/bin/python bench/gpu_check.py --tiny --out /tmp/gpu-check         # CPU, tiny (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BACKENDS = ("stable-diffusion-v1-4", "latent-consistency", "pixart-alpha", "stable-cascade")
GOAL_SPEEDUP = 2.0
GOAL_SECONDS = 600
EQUAL_SHARE = 0.01  # "equal output": at most 1% of pixel values off by more than 8 (bf16/fp16 kernels)


def run(command: list[str], log: Path, timeout: float) -> subprocess.CompletedProcess:
    """A step in its own process, its output kept in `log`."""
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    log.write_text(
        f"$ {' '.join(command)}\n# {time.time() - started:.1f} s, exit {result.returncode}\n"
        + result.stdout
        + "\n--- stderr ---\n"
        + result.stderr
    )
    return result


def save_pipeline(tiny: bool, folder: Path) -> dict[str, str]:
    """The latent-consistency pipeline, random weights, saved where the audit file points."""
    sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "plugins" / "trainprove-diffusers")]
    from trainprove_diffusers import tiny as tiny_pipelines

    if tiny:
        return tiny_pipelines.save("latent-consistency", folder)
    import generators  # bench/generators.py: the full-size configurations
    import torch

    (pipe,) = generators.build_full("latent-consistency", "cuda", torch.float16, t5_layers=24)
    pipe.save_pretrained(folder)
    return {"model": str(folder)}


def save_suspects(folder: Path, arch: str, image_size: int) -> list[Path]:
    """Two timm checkpoints of `arch` for the 10 classes, random weights (config.json + safetensors)."""
    import timm
    import torch
    from safetensors.torch import save_file

    made = []
    for i in range(2):
        where = folder / f"suspect-{i}"
        where.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(i)
        model = timm.create_model(arch, num_classes=10)
        save_file(model.state_dict(), str(where / "model.safetensors"))
        config = {"architecture": arch, "num_classes": 10, "label_names": list(CIFAR10)}
        (where / "config.json").write_text(json.dumps(config))
        made.append(where)
    return made


def audit_file(args: argparse.Namespace, generator: dict[str, str], suspects: list[Path]) -> str:
    tiny = args.tiny
    per_class = (3, 5) if tiny else (300, 500)
    arch, epochs = ("test_resnet", 1) if tiny else ("resnet18", 10)
    gen = {**generator, "device": "cpu" if tiny else "cuda", "batch_size": 4 if tiny else 64}
    if tiny:
        gen |= {"resolution": 32, "steps": 2}
    lines = ["seed = 0", "", "[task]", f"classes = {json.dumps(list(CIFAR10))}", "image_size = 32", ""]
    lines += ["[generator]", 'use = "latent-consistency"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in gen.items()]
    lines += ["", "[shadow]", 'prompt = "a {label}"', f"per_class = {per_class[0]}", f'arch = "{arch}"']
    lines += [f"epochs = {epochs}", f'device = "{"cpu" if tiny else "cuda"}"', ""]
    lines += ["[validation]", 'prompt = "a photo of a {label}"', f"per_class = {per_class[1]}"]
    lines += [f"batch_size = {10 if tiny else 50}", ""]
    for path in suspects:
        lines += [
            "[[suspect]]",
            f'name = "{path.name}"',
            'use = "timm"',
            f"checkpoint = {json.dumps(str(path))}",
        ]
        lines += [f'device = "{"cpu" if tiny else "cuda"}"', ""]
    lines += ["[[test]]", 'use = "trainprove"', ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny pipelines and sizes")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--generators", default=",".join(BACKENDS), help="backends of step 1")
    parser.add_argument("--deadline", type=float, default=None, help="seconds step 1 may take")
    args = parser.parse_args()
    if not args.tiny:
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device here; run it with --tiny on a CPU", file=sys.stderr)
            return 1
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    python = sys.executable
    summary: dict = {"tiny": args.tiny, "load_before": round(os.getloadavg()[0], 2), "steps": {}}
    failed = False

    # 1. the backends against plain diffusers
    deadline = args.deadline or (1e9 if args.tiny else 330)
    command = [
        python,
        "bench/generators.py",
        "--out",
        str(out / "generators.json"),
        "--deadline",
        str(deadline),
    ]
    command += ["--generators", args.generators] + (["--tiny"] if args.tiny else [])
    began = time.time()
    result = run(command, out / "generators.log", timeout=3600)
    backends = []
    if result.returncode == 0 and (out / "generators.json").exists():
        for r in json.loads((out / "generators.json").read_text())["results"]:
            row = {"generator": r["generator"]}
            if "speedup" in r:
                equal = r["share_pixels_off_by_more_than_8"] <= EQUAL_SHARE
                row |= {
                    "plain_img_s": r["plain"]["img_s"],
                    "trainprove_img_s": r["trainprove"]["img_s"],
                    "speedup": r["speedup"],
                    "max_pixel_diff": r["max_pixel_diff"],
                    "mean_pixel_diff": r["mean_pixel_diff"],
                    "equal_output": equal,
                    "goal_met": r["speedup"] >= GOAL_SPEEDUP and equal,
                }
                if r["generator"] == "stable-cascade":
                    row["cascade_equal"] = r["max_pixel_diff"] == 0
            else:
                row["not_measured"] = r.get("error") or r.get("skipped")
                failed = failed or "error" in r
            backends.append(row)
    else:
        failed = True
    summary["steps"]["generators"] = {"seconds": round(time.time() - began, 1), "backends": backends}

    # 2. one audit end to end
    began = time.time()
    audit_dir = out / "audit"
    audit_dir.mkdir(exist_ok=True)
    generator = save_pipeline(args.tiny, audit_dir / "pipeline")
    suspects = save_suspects(audit_dir / "suspects", "test_resnet" if args.tiny else "resnet18", 32)
    (audit_dir / "audit.toml").write_text(audit_file(args, generator, suspects))
    prepared = time.time() - began
    command = [str(Path(python).parent / "trainprove"), "audit", str(audit_dir / "audit.toml")]
    command += ["--out", str(audit_dir / "report"), "--store", str(audit_dir / "store"), "--no-progress"]
    result = run(command, out / "audit.log", timeout=3600)
    audit: dict = {"seconds": round(time.time() - began, 1), "prepare_s": round(prepared, 1)}
    report_path = audit_dir / "report" / "report.json"
    if result.returncode in (0, 1) and report_path.exists():
        report = json.loads(report_path.read_text())
        audit |= {
            "wall_seconds": report["wall_seconds"],
            "timings": report["timings"],
            "counts": report["counts"],
            "verdicts": [(v["suspect"], v["test"], v["decision"]) for v in report["verdicts"]],
            "errors": report["errors"],
        }
    else:
        failed = True
        audit["error"] = (result.stderr or result.stdout)[-2000:]
    summary["steps"]["audit"] = audit
    summary["seconds"] = round(time.time() - started, 1)
    summary["within_10_minutes"] = summary["seconds"] <= GOAL_SECONDS
    summary["load_after"] = round(os.getloadavg()[0], 2)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))
    return 1 if failed else 0


def markdown(summary: dict) -> str:
    size = "tiny, CPU" if summary["tiny"] else "full size, CUDA"
    lines = [
        f"# GPU check ({size}): {summary['seconds']} s, load {summary['load_before']} -> "
        f"{summary.get('load_after')}",
        "",
        "| backend | plain img/s | trainprove img/s | speedup | "
        "max / mean pixel diff | goal (>= 2x, equal) |",
        "|---|---|---|---|---|---|",
    ]
    for b in summary["steps"]["generators"]["backends"]:
        if "speedup" in b:
            goal = "met" if b["goal_met"] else "missed"
            lines.append(
                f"| {b['generator']} | {b['plain_img_s']} | {b['trainprove_img_s']} | {b['speedup']}x | "
                f"{b['max_pixel_diff']} / {b['mean_pixel_diff']} | {goal} |"
            )
        else:
            lines.append(f"| {b['generator']} | not measured: {b.get('not_measured')} | | | | |")
    audit = summary["steps"]["audit"]
    lines += [
        "",
        f"Audit end to end: {audit['seconds']} s (preparing the pipeline and suspects "
        f"{audit['prepare_s']} s).",
    ]
    for phase, seconds in (audit.get("timings") or {}).items():
        lines.append(f"- {phase}: {seconds} s")
    if "error" in audit:
        lines.append(f"- failed: {audit['error'][-300:]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
