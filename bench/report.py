"""How long `report.html` takes to render, per verdict, against the floor of serialising the same report.

A report.json-shaped dict is built with N suspects × 7 decision tests, verdict records of the shapes
`run_audit` writes (Grubbs tests with a reference sample of 25-40 per-batch values, a Welch test with one,
a threshold and a meta-classifier with a value and a boundary but no sample, a coin with neither, a test
declined for want of probabilities, a verdict overruled by a control), suspects with accuracies, one that
could not be queried, a negative and a positive control, and a manifest. `render_html` is timed for
N = 10, 100, 300 (best of a few repeats, so a noisy neighbour on a shared machine matters less), next to
`json.dumps(report, indent=2)` of the same dict, the floor: what writing report.json costs anyway.

The report before inline SVG drew one matplotlib PNG per verdict; a copy of that path is kept here (not in
the package) and timed once, for comparison, unless --no-old.

    .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --sizes 10 78 300 --repeats 5 --json out.json
    .venv/bin/python bench/report.py --write runs/bench-report   # also write one report.html to look at
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainprove_core.report import render_html  # noqa: E402

TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"
ACCURACY = "batch accuracy on the validation set"
TESTS = (
    ("trainprove", "trainprove", "trainprove-tests"),
    ("trainprove-paper", "trainprove", "trainprove-tests"),
    ("trainprove-ent", "trainprove-ent", "trainprove-tests"),
    ("trainprove-sim", "trainprove-sim", "trainprove-tests"),
    ("welch", "welch", "trainprove-baselines"),
    ("accuracy-threshold", "accuracy-threshold", "trainprove-baselines"),
    ("random-guess", "random-guess", "trainprove-baselines"),
)


def _record(suspect: str, test: str, plugin: str, dist: str, truth: str | None, rng: random.Random) -> dict:
    """One verdict record as `_verdict_record` in trainprove_core/audit.py writes it."""
    guilty = truth == TRAINED if truth else rng.random() < 0.5
    n = rng.randint(25, 40)
    base = {
        "suspect": suspect,
        "test": test,
        "statistic": None,
        "threshold": None,
        "p_value": None,
        "alpha": 0.05,
        "n": None,
        "effect_size": None,
        "truth": truth,
        "quantity": ACCURACY,
        "sample": [],
        "suspect_value": None,
        "boundary": None,
        "details": {},
        "plugin": plugin,
        "distribution": dist,
        "version": "0.1.0",
    }
    if test == "trainprove-ent" and rng.random() < 0.3:
        reason = "it needs probabilities and this suspect answers labels only"
        base.update(
            decision=INCONCLUSIVE,
            explanation=f"{suspect}: {test} declined: {reason}.",
            quantity="",
            alpha=None,
            details={"reason": reason, "declined": True},
        )
    elif test in ("trainprove", "trainprove-paper", "trainprove-ent", "trainprove-sim", "welch"):
        side = "high" if test == "trainprove-ent" else "low"
        centre, sd = (0.6, 0.05) if side == "high" else (0.9, 0.02)
        sample = [rng.gauss(centre, sd) for _ in range(n)]
        mean = sum(sample) / n
        shift = (0.0 if guilty else 0.12) * (1 if side == "high" else -1)
        value = mean + shift + rng.gauss(0, sd)
        critical = 2.9 if test != "trainprove-paper" else 3.3
        boundary = mean - critical * sd if side == "low" else mean + critical * sd
        outlier = value < boundary if side == "low" else value > boundary
        decision = NOT_TRAINED if outlier else TRAINED
        g = abs(mean - value) / sd
        quantity = "prediction entropy (nats)" if side == "high" else ACCURACY
        base.update(
            decision=decision,
            explanation=f"{suspect}: {decision.replace('-', ' ')}; its {quantity} is {value:.3f}, "
            f"{'abnormally' if outlier else 'not abnormally'} {side} next to the shadow model's "
            f"{mean:.3f} ± {sd:.3f} over {n} batches: G = {g:.2f} {'>' if outlier else '≤'} {critical:.2f}.",
            statistic=g,
            threshold=critical,
            p_value=min(1.0, 10 ** (-g)),
            n=n,
            effect_size=abs(mean - value),
            sample=sample,
            suspect_value=value,
            boundary=boundary,
            quantity=quantity,
            details={
                "sd": sd,
                "sd_raw": sd * 0.9,
                "sd_floor": 0.01,
                "paper_compat": False,
                "side": side,
                "score": -g,
            },
        )
    elif test == "accuracy-threshold":
        value = rng.uniform(0.6, 0.95)
        decision = TRAINED if value >= 0.8 else NOT_TRAINED
        base.update(
            decision=decision,
            explanation=f"{suspect}: {decision.replace('-', ' ')}; its accuracy ({value:.3f}) "
            f"{'reaches' if value >= 0.8 else 'is below'} the fixed threshold 0.800.",
            statistic=value,
            threshold=0.8,
            n=5000,
            effect_size=0.9 - value,
            suspect_value=value,
            boundary=0.8,
            details={"score": value - 0.8, "shadow_accuracy": 0.9, "relative": False},
        )
    else:
        coin = rng.random()
        decision = TRAINED if coin < 0.5 else NOT_TRAINED
        base.update(
            decision=decision,
            explanation=f"{suspect}: {decision.replace('-', ' ')}; a seeded coin (seed 0) that says trained "
            "with probability 0.5 decided, not the evidence.",
            statistic=coin,
            threshold=0.5,
            quantity="",
            alpha=None,
            details={"score": rng.random(), "seed": 0},
        )
    base["correct"] = None if truth is None or base["decision"] == INCONCLUSIVE else base["decision"] == truth
    return base


def synthetic_report(n_suspects: int, seed: int = 0) -> dict[str, Any]:
    """A report.json-shaped dict with `n_suspects` suspects × 7 tests (see the module's docstring)."""
    rng = random.Random(seed)
    suspects, verdicts = [], []
    for i in range(n_suspects):
        name = f"suspect-{i:03d}-{rng.choice(['resnet18', 'vit_tiny', 'mlp', 'onnx-cnn'])}"
        truth = rng.choice([TRAINED, NOT_TRAINED, None])
        entry = {
            "name": name,
            "use": "timm",
            "truth": truth,
            "distribution": "trainprove-timm",
            "version": "0.1.0",
            "queries_sent": 5000,
        }
        suspects.append(entry)
        if i == 3:
            entry["error"] = f"[suspect {name}] http: 503 Service Unavailable after 5 tries"
            continue
        entry.update(answers=f"{rng.getrandbits(64):016x}", accuracy=rng.uniform(0.5, 0.97), returns="labels")
        verdicts += [_record(name, t, p, d, truth, rng) for t, p, d in TESTS]
    if verdicts:  # one accusation overruled by the negative control
        v = next(v for v in verdicts if v["test"] == "trainprove-sim" and v["decision"] == TRAINED)
        v["details"] = {**v["details"], "overruled": "negative control judged trained-on-generator"}
        v["explanation"] = (
            f"{v['suspect']}: inconclusive: trainprove-sim would say {TRAINED}, but ... Was: "
            + v["explanation"]
        )
        v["decision"], v["correct"] = INCONCLUSIVE, None

    def control(name: str, truth: str) -> list[dict]:
        return [_record(name, t, p, d, truth, rng) for t, p, d in TESTS]

    return {
        "trainprove_version": "0.1.0",
        "created": "2025-06-01T12:00:00+0000",
        "wall_seconds": 1234.5,
        "task": {"classes": [f"class{i}" for i in range(10)], "image_size": 32},
        "generator": {"use": "stable-diffusion-v1-4", "identity": {"model": "CompVis/stable-diffusion-v1-4"}},
        "shadow": {"images": 3000, "model": "ab" * 16, "validation_accuracy": 0.91},
        "validation": {"images": 5000, "batches": 40, "batch_size": 128},
        "suspects": suspects,
        "verdicts": verdicts,
        "negative_control": {
            "source": "digits-real",
            "verdicts": control("negative control (digits-real)", NOT_TRAINED),
        },
        "positive_control": {"trainer": "timm", "verdicts": control("positive control (timm)", TRAINED)},
        "warnings": [
            "negative control failed: trainprove-sim judged a model trained on digits-real's images "
            "trained-on-generator (it is not); its accusations in this audit are reported "
            "inconclusive."
        ],
        "errors": [s["error"] for s in suspects if "error" in s],
        "timings": {
            "checking": 0.8,
            "image_sets": 600.0,
            "shadow_model": 300.0,
            "queries": {s["name"]: rng.uniform(1, 9) for s in suspects},
            "decisions": 2.0,
            "controls": 200.0,
            "report": 0.3,
        },
        "manifest": {
            "audit_file": "audit.toml",
            "audit": {"seed": 0, "suspect": [{"name": s["name"], "use": "timm"} for s in suspects]},
            "seeds": {"audit": 0, "shadow": 1, "validation": 2},
            "plugins": [{"name": t, "distribution": d, "version": "0.1.0"} for t, _, d in TESTS],
            "hashes": {f"answers:{s['name']}": f"{rng.getrandbits(64):016x}" for s in suspects},
            "store": "/home/user/.cache/trainprove",
        },
    }


# ---- the old path: one matplotlib PNG per verdict (trainprove_core/report.py before inline SVG) ----------


def old_verdict_plot(verdict: dict[str, Any]) -> str | None:
    sample = verdict.get("sample") or []
    if not sample:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {TRAINED: "#b2182b", NOT_TRAINED: "#2166ac", INCONCLUSIVE: "#777777"}
    fig, ax = plt.subplots(figsize=(5.2, 1.9), dpi=100)
    ax.hist(
        sample,
        bins=min(20, max(5, len(sample) // 2)),
        color="#bbbbbb",
        edgecolor="#888888",
        label="shadow model, per batch",
    )
    value = verdict.get("suspect_value")
    if value is not None:
        ax.axvline(value, color=colours.get(verdict["decision"], "black"), linewidth=2.5, label="suspect")
    boundary = verdict.get("boundary")
    if boundary is not None:
        ax.axvline(boundary, color="black", linestyle="--", linewidth=1.2, label="critical value")
    ax.set_xlabel(verdict.get("quantity") or "value", fontsize=8)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left", frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def old_render_html(report: dict[str, Any]) -> str:
    """The old report's cost: its tables were cheap, its plots were not; this renders the plots and a
    card per verdict, the part that grew with the audit."""
    import html

    parts = []
    for v in report["verdicts"]:
        plot = old_verdict_plot(v)
        img = f"<img alt='plot' src='data:image/png;base64,{plot}'>" if plot else ""
        parts.append(
            f"<div class='card'><b>{html.escape(v['suspect'])}</b><p>{html.escape(v['explanation'])}"
            f"</p>{img}</div>"
        )
    return "".join(parts)


# ---- timing ----------------------------------------------------------------------------------------------


def best_of(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300], help="suspects per report")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per size (best is kept)")
    parser.add_argument("--no-old", action="store_true", help="skip the matplotlib comparison")
    parser.add_argument("--old-suspects", type=int, default=10, help="suspects for the matplotlib run")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--write", type=Path, default=None, help="write report.html of the first size here")
    args = parser.parse_args(argv)

    print(
        f"# render_html vs json.dumps (best of {args.repeats}); python {platform.python_version()}, "
        f"{platform.machine()}"
    )
    print(
        f"{'suspects':>8} {'verdicts':>8} {'html ms':>9} {'json ms':>8} {'html ms/verdict':>16} "
        f"{'json ms/verdict':>16} {'x floor':>8} {'html KiB':>9}"
    )
    rows = []
    for n in args.sizes:
        report = synthetic_report(n)
        verdicts = len(report["verdicts"]) + sum(
            len(report[k]["verdicts"]) for k in ("negative_control", "positive_control")
        )
        page = render_html(report)  # warm-up, and the size
        t_html = best_of(lambda r=report: render_html(r), args.repeats)
        t_json = best_of(lambda r=report: json.dumps(r, indent=2, default=str), args.repeats)
        row = {
            "suspects": n,
            "verdicts": verdicts,
            "html_s": t_html,
            "json_s": t_json,
            "html_ms_per_verdict": 1000 * t_html / verdicts,
            "json_ms_per_verdict": 1000 * t_json / verdicts,
            "html_bytes": len(page.encode()),
        }
        rows.append(row)
        print(
            f"{n:>8} {verdicts:>8} {1000 * t_html:>9.1f} {1000 * t_json:>8.1f} "
            f"{row['html_ms_per_verdict']:>16.3f} {row['json_ms_per_verdict']:>16.3f} "
            f"{t_html / t_json:>8.1f} {len(page.encode()) / 1024:>9.0f}"
        )
        if args.write and n == args.sizes[0]:
            args.write.mkdir(parents=True, exist_ok=True)
            (args.write / "report.html").write_text(page, encoding="utf-8")
            (args.write / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            print(f"#   wrote {args.write / 'report.html'}")
    old = None
    if not args.no_old:
        report = synthetic_report(args.old_suspects)
        plots = sum(1 for v in report["verdicts"] if v["sample"])
        old_verdict_plot(report["verdicts"][0])  # import matplotlib outside the clock
        t_old = best_of(lambda: old_render_html(report), 1)
        t_new = best_of(lambda: render_html(report), args.repeats)
        n_verdicts = len(report["verdicts"])
        old = {
            "suspects": args.old_suspects,
            "verdicts": n_verdicts,
            "plots": plots,
            "old_s": t_old,
            "new_s": t_new,
        }
        print(
            f"# old matplotlib path, {args.old_suspects} suspects ({n_verdicts} verdicts, {plots} PNGs): "
            f"{1000 * t_old:.0f} ms = {1000 * t_old / n_verdicts:.1f} ms/verdict "
            f"({1000 * t_old / plots:.1f} ms per PNG); new: {1000 * t_new:.1f} ms for the whole page "
            f"({t_old / t_new:.0f}x faster)"
        )
    if args.json:
        args.json.write_text(json.dumps({"sizes": rows, "old": old}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
