"""Benchmark every decision test over the embedded suspect pool, with each generator as the defender.

    .venv/bin/python bench/decision_tests.py            # writes docs/results.md and docs/results.png

The pool and the audits are the demo's (`trainprove_demo.pool`): embedded digit generators as defenders,
suspects trained on each generator's images and on real digits, one audit per defender. Evidence is built
as `run_audit` builds it (same Workspace calls, same cache), so that each test's `decide` can be timed on
its own. Per rule, over all (defender, suspect) pairs: verification accuracy, F1, AUC, false-accusation
and false-clearing rates with exact 95% Clopper-Pearson intervals, abstention rate, queries per suspect,
wall time. A second table runs the same rules on simulated audits (`trainprove_tests.simulate`), where
thousands of trials give tight intervals on what the pool can only hint at.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Every registered decision test, some twice with another setting. `{sources}` is filled per defender.
TESTS: tuple[dict[str, Any], ...] = (
    {"use": "trainprove"},
    {"use": "trainprove", "name": "trainprove (paper_compat)", "paper_compat": True},
    {"use": "trainprove-ent"},
    {"use": "trainprove-sim"},
    {"use": "accuracy-threshold"},
    {"use": "welch"},
    {"use": "welch", "name": "welch (null not-trained)", "null": "not-trained"},
    {"use": "meta-classifier", "sources": "{sources}", "shadows_per_source": 2},
    {"use": "random-guess"},
)
TRAINPROVE = ("trainprove", "trainprove (paper_compat)", "trainprove-ent", "trainprove-sim")


def tests_for(defender: str, sources: Sequence[str]) -> tuple[dict[str, Any], ...]:
    """The test tables of one audit; the meta-classifier's negative sources are every other source."""
    others = [s for s in sources if s != defender]
    return tuple({k: (others if v == "{sources}" else v) for k, v in t.items()} for t in TESTS)


# ---- running the pool ---------------------------------------------------------------------------------


def run_pool(store_dir: Path, show_progress: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every test on every (defender, suspect) pair of the demo pool: one record per verdict."""
    from trainprove_demo.pool import CLASSES, DEFENDERS, IMAGE_SIZE, SOURCES, audit_document, build_pool

    from trainprove_core.audit import Workspace, validation_batches
    from trainprove_core.config import config_from_dict
    from trainprove_core.plugins import load_plugins
    from trainprove_core.records import Evidence
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    started = time.perf_counter()
    plugins = load_plugins(strict=True)
    store = Store(store_dir)
    models_before = _models(store_dir)
    task = Task(CLASSES, IMAGE_SIZE)
    ws = Workspace(task, plugins, store, plugins.get("executor", "local").spec.factory({}), show_progress)
    pool = build_pool(ws, hard=False)
    setup = {
        "pool_seconds": time.perf_counter() - started,
        "suspects": len(pool),
        "defenders": list(DEFENDERS),
    }
    records: list[dict[str, Any]] = []
    for defender in DEFENDERS:
        t0 = time.perf_counter()
        document = audit_document(defender, pool, False, tests_for(defender, SOURCES))
        config = config_from_dict(document, plugins)
        ws.config = config
        generator = ws.generator(config.generator)
        shadow_set = ws.image_set("shadow", generator, config.shadow)
        validation = ws.image_set("validation", generator, config.validation)
        shadow, _ = ws.shadow_model(config.trainer, shadow_set)
        shadow_answers, _ = ws.answers("shadow", shadow, validation)
        batches = validation_batches(len(validation), config.validation.batch_size, config.validation.seed)
        tests = {t.name: plugins.get("test", t.test.use).spec.factory(t.test.settings) for t in config.tests}
        setup[f"audit_seconds:{defender}"] = time.perf_counter() - t0
        for suspect in config.suspects:
            adapter = plugins.get("suspect", suspect.adapter.use).spec.factory(suspect.adapter.settings, task)
            answers, _ = ws.answers(suspect.name, adapter, validation)
            evidence = Evidence(task, validation.labels, batches, shadow_answers, answers, suspect.name, ws)
            for name, test in tests.items():
                t1 = time.perf_counter()
                if test.needs == "probabilities" and answers.probabilities is None:
                    decision, score = "inconclusive", None
                else:
                    verdict = test.decide(evidence)
                    decision, score = verdict.decision, verdict.details.get("score")
                records.append(
                    {
                        "defender": defender,
                        "suspect": suspect.name,
                        "test": name,
                        "truth": suspect.truth,
                        "decision": decision,
                        "score": score,
                        "seconds": time.perf_counter() - t1,
                        "queries": 0 if name == "random-guess" else len(validation),
                    }
                )
        print(
            f"  {defender}: {len(config.suspects)} suspects x {len(tests)} tests "
            f"({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    setup["total_seconds"] = time.perf_counter() - started
    setup["models_trained"] = _models(store_dir) - models_before
    setup["models"] = _models(store_dir)
    return records, setup


def _models(store_dir: Path) -> int:
    """Finished models in the store (to tell a cold run from a warm one)."""
    return len(list((store_dir / "models").glob("*/meta.json")))


# ---- the figures --------------------------------------------------------------------------------------


def rule_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One rule's figures. Abstentions count as errors for accuracy, as "not flagged" for F1, and in
    neither error rate; AUC ranks the decided verdicts by score."""
    from sklearn.metrics import roc_auc_score

    from trainprove_core.evidence import clopper_pearson

    pos = [r for r in records if r["truth"] == "trained-on-generator"]
    neg = [r for r in records if r["truth"] == "not-trained-on-generator"]
    flagged = lambda rs: sum(r["decision"] == "trained-on-generator" for r in rs)  # noqa: E731
    cleared = lambda rs: sum(r["decision"] == "not-trained-on-generator" for r in rs)  # noqa: E731
    correct = flagged(pos) + cleared(neg)
    tp, fp, fn = flagged(pos), flagged(neg), len(pos) - flagged(pos)
    scored = [r for r in records if r["score"] is not None and r["decision"] != "inconclusive"]
    labels = [r["truth"] == "trained-on-generator" for r in scored]
    both = 0 < sum(labels) < len(labels)
    # A perfect shadow gives an infinite Grubbs statistic (paper_compat has no floor); AUC only ranks.
    scores = np.nan_to_num(np.array([r["score"] for r in scored], dtype=float), posinf=1e300, neginf=-1e300)
    auc = float(roc_auc_score(labels, scores)) if both else None
    return {
        "n": len(records),
        "accuracy": correct / len(records),
        "accuracy_ci": clopper_pearson(correct, len(records)),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "auc": auc,
        "false_accusations": fp,
        "negatives": len(neg),
        "false_accusation_rate": fp / len(neg),
        "false_accusation_ci": clopper_pearson(fp, len(neg)),
        "false_clearings": cleared(pos),
        "positives": len(pos),
        "false_clearing_rate": cleared(pos) / len(pos),
        "false_clearing_ci": clopper_pearson(cleared(pos), len(pos)),
        "abstention_rate": sum(r["decision"] == "inconclusive" for r in records) / len(records),
        "queries": float(np.mean([r["queries"] for r in records])),
        "seconds": float(np.sum([r["seconds"] for r in records])),
    }


def simulated_rates(trials: int) -> list[dict[str, Any]]:
    """Each simulable rule on the default `SimulatedAudit`: false clearing and false accusation."""
    from trainprove_baselines.random_guess import RandomGuessTest
    from trainprove_baselines.threshold import AccuracyThresholdTest
    from trainprove_baselines.welch import WelchTest
    from trainprove_tests.simulate import SimulatedAudit, error_rates
    from trainprove_tests.trainprove import TrainProVeTest
    from trainprove_tests.variants import EntropyTest, SimilarityTest

    from trainprove_core.evidence import clopper_pearson

    world = SimulatedAudit()
    rules = (
        ("trainprove", TrainProVeTest(), False),
        ("trainprove (paper_compat)", TrainProVeTest(paper_compat=True), False),
        ("trainprove-ent", EntropyTest(), True),
        ("trainprove-sim", SimilarityTest(), True),
        ("accuracy-threshold", AccuracyThresholdTest(), False),
        ("welch", WelchTest(), False),
        ("welch (null not-trained)", WelchTest(null="not-trained"), False),
        ("random-guess", RandomGuessTest(), False),
    )
    rows = []
    for i, (name, test, probabilities) in enumerate(rules):
        counts = error_rates(test, world, trials, seed=1000 + i, probabilities=probabilities)
        rows.append(
            {
                "test": name,
                "trials": trials,
                "false_clearing_rate": counts["false_clear"] / trials,
                "false_clearing_ci": clopper_pearson(counts["false_clear"], trials),
                "false_accusation_rate": counts["false_accuse"] / trials,
                "false_accusation_ci": clopper_pearson(counts["false_accuse"], trials),
            }
        )
    return rows


# ---- writing ------------------------------------------------------------------------------------------


def _ci(rate: float, ci: tuple[float, float]) -> str:
    return f"{rate:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _opt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def write_markdown(
    path: Path,
    metrics: Mapping[str, Mapping[str, Any]],
    per_defender: Mapping[str, Any],
    simulation: Sequence[Mapping[str, Any]],
    setup: Mapping[str, Any],
    command: str,
) -> None:
    baselines = {k: v for k, v in metrics.items() if k not in TRAINPROVE}
    best = max(baselines, key=lambda k: (baselines[k]["accuracy"], baselines[k]["auc"] or 0))
    tp = metrics["trainprove"]
    lines = [
        "# Decision tests on the embedded suspect pool",
        "",
        f"Produced by `{command}`: wall time {setup['total_seconds']:.0f} s on this machine (2 shared CPU "
        f"cores), of which {setup['pool_seconds']:.0f} s building or loading the suspect pool; this run "
        f"trained {setup['models_trained']} of the {setup['models']} models it used (the rest came from the "
        "cache). The pool is the demo's: "
        f"{setup['suspects']} timm suspects (two recipes per source, trained on images of each of four "
        "embedded generators and of real digits); each of the four generators in turn is the defender, so "
        f"every rule gives {tp['n']} verdicts ({tp['positives']} suspects trained on the defender's images, "
        f"{tp['negatives']} on another source). Details of each rule: "
        "[decision-tests.md](decision-tests.md).",
        "",
        'Accuracy counts an abstention as an error; F1 counts it as "not flagged"; the error rates count '
        "it in neither. False accusation = a suspect trained elsewhere called `trained-on-generator`; "
        "false clearing = a suspect trained on the defender's images called `not-trained-on-generator`. "
        "Intervals are exact 95% Clopper-Pearson. AUC ranks decided verdicts by each rule's score. Queries "
        "are suspect queries per audit; time is the rule's own `decide` per verdict, in milliseconds (the "
        "meta-classifier's includes training its shadow models when they are not cached).",
        "",
        "| rule | accuracy [95% CI] | F1 | AUC | false accusation [95% CI] | false clearing [95% CI] | "
        "abstains | queries/suspect | ms/verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {_ci(m['accuracy'], m['accuracy_ci'])} | {_opt(m['f1'])} | {_opt(m['auc'])} | "
            f"{_ci(m['false_accusation_rate'], m['false_accusation_ci'])} ({m['false_accusations']}/"
            f"{m['negatives']}) | {_ci(m['false_clearing_rate'], m['false_clearing_ci'])} "
            f"({m['false_clearings']}/{m['positives']}) | {m['abstention_rate']:.3f} | {m['queries']:.0f} | "
            f"{1000 * m['seconds'] / m['n']:.1f} |"
        )
    goal = tp["accuracy"] >= 0.995 and tp["false_accusation_rate"] <= 0.01
    lines += [
        "",
        f"**TrainProVe**: accuracy {tp['accuracy']:.3f}, false accusation {tp['false_accusation_rate']:.3f}, "
        f"false clearing {tp['false_clearing_rate']:.3f}. **Best baseline** ({best}): accuracy "
        f"{baselines[best]['accuracy']:.3f}, false accusation "
        f"{baselines[best]['false_accusation_rate']:.3f}. "
        f"The issue's goal (accuracy >= 0.995 with false accusation <= 0.01) is "
        f"{'met' if goal else 'not met'} on this pool; with {tp['n']} verdicts the 95% interval on accuracy "
        f"is [{tp['accuracy_ci'][0]:.3f}, {tp['accuracy_ci'][1]:.3f}], so the pool cannot show 0.995 either "
        "way.",
        "",
        "Caveats. The meta-classifier (2 shadow models per source) is shown shadows from exactly the "
        "sources the negative suspects were trained on, an advantage a real auditor rarely has. Forty "
        "verdicts per rule cannot separate rules that all score near 1; the simulated audits below can, and "
        "they show what the pool cannot: TrainProVe's alpha bounds false clearing, not false accusation.",
        "",
        "## Per defender (TrainProVe)",
        "",
        "| defender | accuracy | false accusations | false clearings | abstains |",
        "|---|---|---|---|---|",
    ]
    for defender, m in per_defender.items():
        lines.append(
            f"| {defender} | {m['accuracy']:.3f} | {m['false_accusations']}/{m['negatives']} | "
            f"{m['false_clearings']}/{m['positives']} | {m['abstention_rate']:.3f} |"
        )
    lines += [
        "",
        "## Simulated audits",
        "",
        "The same rules on `trainprove_tests.simulate.SimulatedAudit()` (40 batches of 125, shadow accuracy "
        "0.90, same-source suspects within a 0.01 spread of it, other-source suspects 0.05 below; see that "
        "module for every setting). These numbers describe the simulation, not a real audit; they show what "
        "each rule's alpha does and does not bound.",
        "",
        "| rule | trials per kind | false clearing [95% CI] | false accusation [95% CI] |",
        "|---|---|---|---|",
    ]
    for row in simulation:
        lines.append(
            f"| {row['test']} | {row['trials']} | "
            f"{_ci(row['false_clearing_rate'], row['false_clearing_ci'])} | "
            f"{_ci(row['false_accusation_rate'], row['false_accusation_ci'])} |"
        )
    lines += ["", "![error rates per rule](results.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_plot(path: Path, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(metrics)
    series = (
        ("accuracy", "accuracy_ci", "verification accuracy"),
        ("false_accusation_rate", "false_accusation_ci", "false accusation"),
        ("false_clearing_rate", "false_clearing_ci", "false clearing"),
    )
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, (key, ci_key, label) in enumerate(series):
        values = np.array([metrics[n][key] for n in names])
        lo = values - np.array([metrics[n][ci_key][0] for n in names])
        hi = np.array([metrics[n][ci_key][1] for n in names]) - values
        ax.bar(x + (i - 1) * 0.27, values, 0.27, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(x, names, rotation=25, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate (95% Clopper-Pearson)")
    ax.set_title("Decision tests on the embedded suspect pool (all defenders)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store",
        type=Path,
        default=ROOT / "runs" / "bench" / "store",
        help="cache of image sets, models and answers (default: runs/bench/store)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where results.md and results.png go")
    parser.add_argument("--simulation-trials", type=int, default=2000, help="simulated suspects per kind")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    records, setup = run_pool(args.store, args.progress)
    names = list(dict.fromkeys(r["test"] for r in records))
    metrics = {n: rule_metrics([r for r in records if r["test"] == n]) for n in names}
    per_defender = {
        d: rule_metrics([r for r in records if r["test"] == "trainprove" and r["defender"] == d])
        for d in setup["defenders"]
    }
    simulation = simulated_rates(args.simulation_trials)
    args.out.mkdir(parents=True, exist_ok=True)
    shown = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--progress")]
    command = shlex.join([".venv/bin/python", "bench/decision_tests.py", *shown])
    write_markdown(args.out / "results.md", metrics, per_defender, simulation, setup, command)
    write_plot(args.out / "results.png", metrics)
    print(f"wrote {args.out / 'results.md'} and {args.out / 'results.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
