"""Benchmark every decision rule, through `run_audit` (the code path of `trainprove audit`).

    .venv/bin/python bench/suspect_pool.py          # once: the pool of suspects unlike the shadow
    .venv/bin/python bench/decision_tests.py        # writes docs/results.md and docs/results.png
    .venv/bin/python bench/suspect_pool.py --world fashion
    .venv/bin/python bench/decision_tests.py --world fashion   # docs/results-fashion.md and .png
    .venv/bin/python bench/decision_tests.py --summary         # both worlds' table atop docs/results.md

Two pools, each audited by the world's four defending generators in turn (one audit per defender and
setting, every rule in every audit, or the rules of `--rules`):

- **bench**: the pool of `bench/suspect_pool.py` (docs/bench-pool.md): suspects made by a training loop
  that is not the shadow trainer, under many conditions (architectures, augmentation, mixup, few images,
  data mixtures, other sampler settings, under-training, ONNX exports), on the styled and on the `--hard`
  generators. The main table.
- **demo**: the demo's pool (`trainprove_demo.pool`, made by the shadow's own trainer): the easiest case,
  kept as the demo's table.

Per rule: accuracy, accuracy on decided verdicts, false-accusation and false-clearing rates (all with exact
95% Clopper-Pearson intervals), inconclusive rate and queries per verdict, overall, per setting and per
condition. A last table runs the simulable rules on simulated audits (`trainprove_core.simulate`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAINED, NOT_TRAINED = "trained-on-generator", "not-trained-on-generator"
ALPHA = 0.01
ROUNDS = 4  # the sequential design's rounds (docs: "Sequential verdicts")
SEQUENTIAL_RULES = ("calibrated", "trainprove")


@dataclass(frozen=True)
class BenchWorld:
    """What the benchmark needs of one of the demo's worlds (`trainprove_demo.pool.WORLDS`)."""

    name: str
    defenders: tuple[str, ...]
    real: str
    unseen: str  # the generator that never defends and is shown to no rule: some innocent suspects' source
    recipes: Mapping[str, Mapping[str, Any]] | None  # the calibrated rule's; None: the rule's defaults
    stem: str  # docs/<stem>.md and docs/<stem>.png
    audited_by: tuple[str, ...] = ()  # the defenders that audit the pool (`--defenders`); () = all of them

    @property
    def auditors(self) -> tuple[str, ...]:
        return self.audited_by or self.defenders

    @property
    def runs(self) -> Path:
        """Where the audits' reports and records.json go."""
        return ROOT / "runs" / ("bench" if self.name == "digits" else f"bench-{self.name}")

    @property
    def pool(self) -> Path:
        """bench/suspect_pool.py's default folder for this world."""
        return ROOT / "runs" / ("bench-pool" if self.name == "digits" else f"bench-pool-{self.name}")


UNSEEN = {"digits": "digits-gan", "fashion": "fashion-gmm"}
"""Per world, the generator bench/suspect_pool.py trains innocent suspects on and no defender is."""


def bench_world(name: str) -> BenchWorld:
    """The digits world keeps the calibrated rule's default recipes (docs/results.md was measured so);
    the fashion world takes the demo's, so its reference models are the ones `trainprove demo --world
    fashion` trained and a shared `--store` reuses them."""
    from trainprove_demo.pool import CALIBRATED_RECIPES, WORLDS

    w = WORLDS[name]
    if name == "digits":
        return BenchWorld(name, w.defenders, w.real, UNSEEN[name], None, "results")
    return BenchWorld(name, w.defenders, w.real, UNSEEN[name], CALIBRATED_RECIPES, f"results-{name}")


WORLD: list[BenchWorld] = []
"""The world of this run (set once by `main`), as EXECUTOR holds its executor."""


def world() -> BenchWorld:
    return WORLD[0]


def tests_for(defender: str) -> tuple[dict[str, Any], ...]:
    """Every registered rule (two in a second setting). The meta-classifier and the calibrated rule are
    shown the other defenders and the real source; the unseen generator is never shown to them."""
    w = world()
    others = [d for d in w.defenders if d != defender] + [w.real]
    recipes = {"recipes": {k: dict(v) for k, v in w.recipes.items()}} if w.recipes else {}
    return (
        {"use": "trainprove"},
        {"use": "trainprove", "name": "trainprove (paper_compat)", "paper_compat": True},
        {"use": "trainprove-ent"},
        {"use": "trainprove-sim"},
        {"use": "accuracy-threshold"},
        {"use": "welch"},
        {"use": "welch", "name": "welch (null not-trained)", "null": "not-trained"},
        {"use": "meta-classifier", "sources": others, "shadows_per_source": 2},
        {"use": "random-guess"},
        {"use": "calibrated", "references": others, "alpha": ALPHA, **recipes},
        {
            "use": "calibrated",
            "name": "calibrated (relative only)",
            "references": others,
            "alpha": ALPHA,
            "clear_by": "relative",
            **recipes,
        },
    )


# ---- running ------------------------------------------------------------------------------------------


def _records(report: Mapping[str, Any], extra: Mapping[str, Mapping[str, Any]], **fields: Any) -> list[dict]:
    """The report's verdicts as benchmark records, with what the pool knows of each suspect. In a
    sequential audit (one rule per audit) a verdict's queries are the images its suspect was asked."""
    n_validation = report["validation"]["images"]
    asked = {s["name"]: s.get("queries_asked") for s in report["suspects"]}
    out = []
    for v in report["verdicts"]:
        queries = 0 if v["test"] == "random-guess" else n_validation
        queries += int(v["details"].get("reference_queries", 0) or 0)
        if "look" in v["details"]:
            queries = asked[v["suspect"]]
        out.append(
            {
                **fields,
                **extra.get(v["suspect"], {}),
                "suspect": v["suspect"],
                "test": v["test"],
                "truth": v["truth"],
                "decision": v["decision"],
                "score": v["details"].get("score"),
                "queries": queries,
                "reason": v["details"].get("reason"),
            }
        )
    return out


def audit_pool(
    suspects: Sequence[Mapping[str, Any]],
    setting: str,
    store: Any,
    out_dir: Path,
    plugins: Any,
    extra: Mapping[str, Mapping[str, Any]],
    show_progress: bool,
    rules: Collection[str] | None = None,
    rounds: int = 1,
) -> list[dict[str, Any]]:
    """One `run_audit` per defender over `suspects` (suspect tables with `name`, `use`, ... and
    `guilty_for`), every rule in each (or only `rules`), asked in `rounds` rounds."""
    from trainprove_demo.pool import audit_document

    from trainprove_core.audit import run_audit
    from trainprove_core.config import config_from_dict

    records = []
    for defender in world().auditors:
        t0 = time.perf_counter()
        tests = [t for t in tests_for(defender) if rules is None or t.get("name", t["use"]) in rules]
        doc = audit_document(defender, [], setting == "hard", tuple(tests), world=world().name)
        doc["validation"] = {**doc["validation"], "rounds": rounds}
        doc["shadow"] = {**doc["shadow"], **FORMER_TRAINER}
        doc["suspect"] = [
            {
                "name": s["name"],
                **s["adapter"],
                "truth": TRAINED if defender in s["guilty_for"] else NOT_TRAINED,
            }
            for s in suspects
        ]
        doc["executor"] = dict(EXECUTOR)
        config = config_from_dict(doc, plugins, source=f"bench-{setting}-{defender}.toml", base_dir=ROOT)
        result = run_audit(config, plugins, out_dir / setting / defender, store, show_progress, html=False)
        if result.errors:
            print(f"  errors: {result.errors[:3]}", file=sys.stderr)
        records += _records(result.report, extra, defender=defender, setting=setting)
        print(
            f"  {setting} {defender}: {len(suspects)} suspects ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
    return records


def bench_pool(
    pool_dir: Path,
    store: Any,
    out_dir: Path,
    plugins: Any,
    settings: Sequence[str],
    show_progress: bool,
    limit: int | None = None,
    rules: Collection[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    manifest = json.loads((pool_dir / "manifest.json").read_text(encoding="utf-8"))
    records = []
    for setting in settings:
        suspects = [s for s in manifest["suspects"] if s["setting"] == setting][:limit]
        extra = {
            s["name"]: {
                "condition": s["condition"],
                "learned_task": s["learned_task"],
                "architecture": s["architecture"],
                "primary_source": s["primary_source"],
            }
            for s in suspects
        }
        records += audit_pool(suspects, setting, store, out_dir, plugins, extra, show_progress, rules)
    return records, {"suspects": len(manifest["suspects"]), "pool_seconds": manifest.get("seconds")}


EXECUTOR: dict[str, Any] = {"use": "local"}
"""The `[executor]` table of every audit and of the demo's pool (`--executor ray`)."""

FORMER_TRAINER = {"channels_last": False, "fused_optimizer": False}
"""The timm trainer as these figures were measured (before stop 22 made channels-last and the fused AdamW
its defaults: the same training, rounded differently). Pinned so the stores behind docs/results*.md answer a
re-run instead of training every shadow, reference model and demo suspect again."""


def sequential_pool(
    pool_dir: Path,
    store: Any,
    out_dir: Path,
    plugins: Any,
    settings: Sequence[str],
    show_progress: bool,
    limit: int | None = None,
    rules: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The sequential rules (of `rules`) alone, each in its own audits, asked in ROUNDS rounds."""
    manifest = json.loads((pool_dir / "manifest.json").read_text(encoding="utf-8"))
    records = []
    for rule in (r for r in SEQUENTIAL_RULES if rules is None or r in rules):
        for setting in settings:
            suspects = [s for s in manifest["suspects"] if s["setting"] == setting]
            if limit is not None and limit < len(suspects):  # evenly spaced: every condition of the pool
                suspects = [suspects[i] for i in np.linspace(0, len(suspects) - 1, limit).round().astype(int)]
            extra = {s["name"]: {"condition": s["condition"]} for s in suspects}
            records += audit_pool(
                suspects,
                setting,
                store,
                out_dir / "sequential" / rule,
                plugins,
                extra,
                show_progress,
                rules=(rule,),
                rounds=ROUNDS,
            )
    return records


def sequential_table(
    bench: Sequence[Mapping[str, Any]], sequential: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Fixed design against sequential, per rule and setting: both error rates, inconclusive, queries."""
    lines = [
        "| rule | setting | design | verdicts | false accusation | false clearing | inconclusive | "
        "queries/verdict | queries vs fixed | queries/decided verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rule in SEQUENTIAL_RULES:
        for setting in ("styled", "hard"):
            seq = [r for r in sequential if r["test"] == rule and r["setting"] == setting]
            # the fixed design on the same suspects and defenders
            asked = {(r["suspect"], r["defender"]) for r in seq}
            fixed = [
                r
                for r in bench
                if r["test"] == rule and r["setting"] == setting and (r["suspect"], r["defender"]) in asked
            ]
            if not fixed or not seq:
                continue
            base = rule_metrics(fixed)["queries"]
            for design, rs in (("fixed", fixed), (f"sequential, {ROUNDS} rounds", seq)):
                m = rule_metrics(rs)
                decided = [r["queries"] for r in rs if r["decision"] != "inconclusive"]
                lines.append(
                    f"| {rule} | {setting} | {design} | {m['n']} | "
                    f"{_ci(m['false_accusation_rate'], m['false_accusation_ci'])} ({m['false_accusations']}/"
                    f"{m['negatives']}) | {_ci(m['false_clearing_rate'], m['false_clearing_ci'])} "
                    f"({m['false_clearings']}/{m['positives']}) | {m['inconclusive_rate']:.3f} | "
                    f"{m['queries']:.0f} | {m['queries'] / base:.2f} | "
                    + (f"{np.mean(decided):.0f} |" if decided else "n/a |")
                )
    return lines


def demo_pool(
    store: Any, out_dir: Path, plugins: Any, show_progress: bool, rules: Collection[str] | None = None
) -> list[dict[str, Any]]:
    from trainprove_demo.pool import WORLDS, build_pool

    from trainprove_core.audit import Workspace
    from trainprove_core.task import Task

    executor = {k: v for k, v in EXECUTOR.items() if k != "use"}
    w = WORLDS[world().name]
    with Workspace.open(
        Task(w.classes, w.image_size), plugins, store, show_progress, EXECUTOR["use"], executor
    ) as ws:
        pool = build_pool(ws, hard=False, world=w.name, trainer=FORMER_TRAINER)
    suspects = [
        {
            "name": s.name,
            "adapter": {"use": "timm", "checkpoint": str(s.checkpoint)},
            "guilty_for": [s.source] if s.source in w.defenders else [],
        }
        for s in pool
    ]
    extra = {s.name: {"condition": "demo", "learned_task": True, "primary_source": s.source} for s in pool}
    return audit_pool(suspects, "styled", store, out_dir / "demo", plugins, extra, show_progress, rules)


# ---- the figures --------------------------------------------------------------------------------------


def rule_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One rule's figures. Accuracy counts an inconclusive verdict as not right; the error rates count it
    in neither; accuracy on decided verdicts leaves them out."""
    from trainprove_core.evidence import clopper_pearson

    pos = [r for r in records if r["truth"] == TRAINED]
    neg = [r for r in records if r["truth"] == NOT_TRAINED]
    learned_pos = [r for r in pos if r.get("learned_task", True)]
    flagged = sum(r["decision"] == TRAINED for r in neg)
    cleared = sum(r["decision"] == NOT_TRAINED for r in pos)
    cleared_learned = sum(r["decision"] == NOT_TRAINED for r in learned_pos)
    right = sum(r["decision"] == r["truth"] for r in records)
    decided = [r for r in records if r["decision"] != "inconclusive"]
    right_decided = sum(r["decision"] == r["truth"] for r in decided)
    n = len(records)
    return {
        "n": n,
        "accuracy": right / n if n else float("nan"),
        "accuracy_ci": clopper_pearson(right, n),
        "decided": len(decided),
        "accuracy_decided": right_decided / len(decided) if decided else float("nan"),
        "accuracy_decided_ci": clopper_pearson(right_decided, len(decided)),
        "false_accusations": flagged,
        "negatives": len(neg),
        "false_accusation_rate": flagged / len(neg) if neg else float("nan"),
        "false_accusation_ci": clopper_pearson(flagged, len(neg)),
        "false_clearings": cleared,
        "positives": len(pos),
        "false_clearing_rate": cleared / len(pos) if pos else float("nan"),
        "false_clearing_ci": clopper_pearson(cleared, len(pos)),
        "false_clearings_learned": cleared_learned,
        "positives_learned": len(learned_pos),
        "false_clearing_learned_rate": cleared_learned / len(learned_pos) if learned_pos else float("nan"),
        "false_clearing_learned_ci": clopper_pearson(cleared_learned, len(learned_pos)),
        "inconclusive_rate": 1 - len(decided) / n if n else float("nan"),
        "queries": float(np.mean([r["queries"] for r in records])) if records else 0.0,
    }


def simulated_rates(trials: int) -> list[dict[str, Any]]:
    """The rules that judge bare answers, on the default `SimulatedAudit`: both error rates."""
    from trainprove_baselines.random_guess import RandomGuessTest
    from trainprove_baselines.threshold import AccuracyThresholdTest
    from trainprove_baselines.welch import WelchTest
    from trainprove_paper.trainprove import TrainProVeTest
    from trainprove_paper.variants import EntropyTest, SimilarityTest

    from trainprove_core.evidence import clopper_pearson
    from trainprove_core.simulate import SimulatedAudit, error_rates

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


def _ci(rate: float, ci: Sequence[float]) -> str:
    return "n/a" if rate != rate else f"{rate:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def rule_table(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| rule | verdicts | accuracy [95% CI] | accuracy decided [95% CI] | false accusation [95% CI] | "
        "false clearing [95% CI] | false clearing, learned [95% CI] | inconclusive | queries/verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        lines.append(
            f"| {name} | {m['n']} | {_ci(m['accuracy'], m['accuracy_ci'])} | "
            f"{_ci(m['accuracy_decided'], m['accuracy_decided_ci'])} | "
            f"{_ci(m['false_accusation_rate'], m['false_accusation_ci'])} ({m['false_accusations']}/"
            f"{m['negatives']}) | {_ci(m['false_clearing_rate'], m['false_clearing_ci'])} "
            f"({m['false_clearings']}/{m['positives']}) | "
            f"{_ci(m['false_clearing_learned_rate'], m['false_clearing_learned_ci'])} "
            f"({m['false_clearings_learned']}/{m['positives_learned']}) | {m['inconclusive_rate']:.3f} | "
            f"{m['queries']:.0f} |"
        )
    return lines


def by(records: Sequence[Mapping[str, Any]], *keys: str) -> dict[tuple, list[Mapping[str, Any]]]:
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return groups


def goals(records: Sequence[Mapping[str, Any]], rule: str) -> list[str]:
    """A calibrated rule's goals, each met or not, with the numbers."""
    cal = [r for r in records if r["test"] == rule]
    if not cal:
        return []
    whole = rule_metrics(cal)
    lines = [f"### `{rule}` against the goals", ""]
    over = []
    for (setting, condition), rs in sorted(by(cal, "setting", "condition").items()):
        m = rule_metrics(rs)
        if m["negatives"] and m["false_accusation_rate"] > ALPHA:
            over.append(f"{setting}/{condition} {m['false_accusations']}/{m['negatives']}")
    styled = rule_metrics([r for r in cal if r["setting"] == "styled"])
    hard = rule_metrics([r for r in cal if r["setting"] == "hard"])

    def mark(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines += [
        f"- False accusation <= alpha ({ALPHA}) on every condition: {mark(not over)}"
        + (f" (above it: {', '.join(over)})" if over else "")
        + ".",
        f"- Upper 95% bound on false accusation over the whole benchmark <= 0.03: "
        f"{mark(whole['false_accusation_ci'][1] <= 0.03)} "
        f"({whole['false_accusations']}/{whole['negatives']}, "
        f"upper bound {whole['false_accusation_ci'][1]:.3f}).",
        f"- False clearing <= 0.05 over guilty suspects that learned the task: "
        f"{mark(whole['false_clearing_learned_rate'] <= 0.05)} ({whole['false_clearings_learned']}/"
        f"{whole['positives_learned']}; all guilty: {whole['false_clearings']}/{whole['positives']}).",
    ]
    if styled["n"]:
        lines.append(
            f"- Styled generators, accuracy on decided verdicts >= 0.99 and inconclusive <= 10%: "
            f"{mark(styled['accuracy_decided'] >= 0.99 and styled['inconclusive_rate'] <= 0.10)} "
            f"(accuracy decided {styled['accuracy_decided']:.3f}, "
            f"inconclusive {styled['inconclusive_rate']:.3f})."
        )
    if hard["n"]:
        lines.append(
            f"- `--hard` generators, false accusation <= alpha: "
            f"{mark(hard['false_accusation_rate'] <= ALPHA)} "
            f"({hard['false_accusations']}/{hard['negatives']}; "
            f"inconclusive {hard['inconclusive_rate']:.3f})."
        )
    return lines + [""]


ABLATIONS = (
    # label, how p_guilty is made ("iut": strong and pure sub-populations; "strong": the first alone;
    # "pooled": every guilty model on the absolute error, the rule before the sub-populations), min_accuracy
    ("as shipped", "iut", 0.5),
    ("min_accuracy 0.3", "iut", 0.3),
    ("strong sub-population alone (no gap test)", "strong", 0.5),
    ("one pooled guilty population (the rule before)", "pooled", 0.5),
)


def ablation(runs: Path) -> list[dict[str, Any]]:
    """The calibrated rule's decisions recomputed from the audits' reports with parts of it taken away or
    replaced: the reference models' and suspects' accuracies are in each verdict's details, so no model is
    trained or queried again."""
    import sys

    sys.path.insert(0, str(ROOT / "plugins" / "trainprove-calibrated"))
    from trainprove_calibrated.rule import STATISTICS, Population, decide, relative_error, sd_floors

    def stats(acc_g: float, acc_r: Sequence[float], n_g: int, n_r: int) -> dict[str, float]:
        return {st: relative_error(acc_g, n_g, acc_r, n_r, st) for st in STATISTICS}

    rows = []
    for label, clearing, min_accuracy in ABLATIONS:
        counts: dict[tuple[str, str, str], int] = {}
        for report_path in sorted(runs.glob(f"*/{world().name}-*/report.json")):
            setting, defender = report_path.parts[-3], report_path.parts[-2]
            if setting not in ("styled", "hard"):
                continue
            report = json.loads(report_path.read_text(encoding="utf-8"))
            verdicts = [v for v in report["verdicts"] if v["test"] == "calibrated"]
            if not verdicts:  # `--rules` without it
                continue
            models = next(
                v["details"]["reference_models"] for v in verdicts if "reference_models" in v["details"]
            )
            n_g = report["validation"]["images"]
            n_r = verdicts[0]["details"]["reference_queries"] // max(
                1, len(verdicts[0]["details"]["accuracy_references"])
            )

            def of(
                m: Mapping[str, Any], d: str = defender, n_g: int = n_g, n_r: int = n_r
            ) -> dict[str, float]:
                return stats(m["accuracy"][d], [a for k, a in m["accuracy"].items() if k != d], n_g, n_r)

            inn = [m for m in models if m["population"] == "innocent"]
            floor = sd_floors(n_g, n_r, len(verdicts[0]["details"]["accuracy_references"]))
            innocent = Population(
                np.array([of(m)["relative"] for m in inn]),
                floor["relative"],
                np.array([m["trained_on"] for m in inn]),
            )
            guilty = [m for m in models if m["population"] == "guilty"]
            strong = [m for m in guilty if not m.get("weak") or clearing == "pooled"]
            pure = [m for m in guilty if m.get("share", 1.0) >= 1.0]
            strong_pop = Population(np.array([of(m)["absolute"] for m in strong]), floor["absolute"])
            pure_pop = (
                Population(np.array([of(m)["gap"] for m in pure]), floor["gap"])
                if clearing == "iut"
                else None
            )
            for v in verdicts:
                d = v["details"]
                best = max([d["accuracy_generator"], *d["accuracy_references"].values()])
                if best < min_accuracy:
                    decision = "inconclusive"
                else:
                    st = stats(d["accuracy_generator"], list(d["accuracy_references"].values()), n_g, n_r)
                    decision = decide(
                        st["relative"], innocent, strong_pop, ALPHA, 0.05, st["absolute"], pure_pop, st["gap"]
                    )[0]
                key = (setting, v["truth"], decision)
                counts[key] = counts.get(key, 0) + 1
        for setting in ("styled", "hard"):
            c = {k[1:]: n for k, n in counts.items() if k[0] == setting}
            total = sum(c.values())
            if not total:  # a setting this run did not audit (`--settings`)
                continue
            rows.append(
                {
                    "variant": label,
                    "setting": setting,
                    "false_accusations": c.get((NOT_TRAINED, TRAINED), 0),
                    "negatives": sum(n for k, n in c.items() if k[0] == NOT_TRAINED),
                    "false_clearings": c.get((TRAINED, NOT_TRAINED), 0),
                    "positives": sum(n for k, n in c.items() if k[0] == TRAINED),
                    "inconclusive": sum(n for k, n in c.items() if k[1] == "inconclusive") / max(1, total),
                }
            )
    return rows


def condition_table(records: Sequence[Mapping[str, Any]], rules: Sequence[str]) -> list[str]:
    head = "| setting | condition | " + " | ".join(rules) + " |"
    lines = [
        "Each cell: false accusations / innocent verdicts, false clearings / guilty verdicts, inconclusive "
        "verdicts / all.",
        "",
        head,
        "|---|---|" + "---|" * len(rules),
    ]
    for (setting, condition), rs in sorted(by(records, "setting", "condition").items()):
        cells = []
        for rule in rules:
            m = rule_metrics([r for r in rs if r["test"] == rule])
            inconclusive = round(m["inconclusive_rate"] * m["n"])
            cells.append(
                f"FA {m['false_accusations']}/{m['negatives']}, FC {m['false_clearings']}/{m['positives']}, "
                f"inc {inconclusive}/{m['n']}"
            )
        lines.append(f"| {setting} | {condition} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(
    path: Path,
    ablations: Sequence[Mapping[str, Any]],
    bench: Sequence[Mapping[str, Any]],
    demo: Sequence[Mapping[str, Any]],
    simulation: Sequence[Mapping[str, Any]],
    setup: Mapping[str, Any],
    command: str,
    sequential: Sequence[Mapping[str, Any]] = (),
) -> None:
    rules = list(dict.fromkeys(r["test"] for r in [*bench, *demo]))
    w = world()
    digits = w.name == "digits"
    generators = "digit" if digits else w.name
    real = "real digits" if digits else f"the real source ({w.real})"
    settings = [s for s in ("styled", "hard") if any(r["setting"] == s for r in bench)]
    on_settings = (
        "on the styled and on the `--hard` generators"
        if len(settings) == 2
        else f"on the {settings[0]} generators only"
        if settings
        else ""
    )
    auditors = (
        f"the four {generators} generators in turn"
        if w.auditors == w.defenders
        else f"{', '.join(w.auditors)} only (`--defenders`: a partial run, not the four {generators} "
        "generators)"
    )
    lines = [
        "# Decision rules, measured" + ("" if digits else f": the {w.name} world"),
        "",
        f"Produced by `{command}` in {setup['seconds']:.0f} s ({setup['cpu_seconds']:.0f} CPU s in the "
        f"process) on this machine (2 shared CPU cores, load {setup['load_start']} at the start, "
        f"{setup['load']} at the end). Every verdict below comes from `run_audit`, the code path of "
        "`trainprove audit`; each rule is described in [decision-tests.md](decision-tests.md).",
        "",
        "False accusation = a suspect trained elsewhere called `trained-on-generator`; false clearing = a "
        "suspect trained on the defender's images (wholly or in part) called `not-trained-on-generator`; "
        "*learned* = guilty suspects that learned the task (accuracy on their own training source's held-out "
        "images at or above the pool's line, [bench-pool.md](bench-pool.md)). Accuracy counts an "
        "inconclusive verdict as not right; the error rates count it in neither. Intervals are exact 95% "
        "Clopper-Pearson. Queries are the suspect's, per verdict.",
        "",
    ]
    if bench:
        lines += [
            "## The benchmark: suspects unlike the shadow",
            "",
            f"{setup.get('suspects', 0)} suspects from `bench/suspect_pool.py` "
            f"([bench-pool.md](bench-pool.md)), each audited by {auditors}, {on_settings}. The calibrated "
            "rule and the meta-classifier are shown "
            f"the three other defenders and {real}; {w.unseen}, the source of some innocent suspects, "
            "is shown to no rule.",
            "",
            "### All verdicts",
            "",
            *rule_table({n: rule_metrics([r for r in bench if r["test"] == n]) for n in rules}),
            "",
        ]
        for setting in ("styled", "hard"):
            rs = [r for r in bench if r["setting"] == setting]
            if rs:
                lines += [
                    f"### {setting.capitalize()} generators",
                    "",
                    *rule_table({n: rule_metrics([r for r in rs if r["test"] == n]) for n in rules}),
                    "",
                ]
        for rule in ("calibrated", "calibrated (relative only)"):
            lines += goals(bench, rule)
        lines += [
            "### Per condition",
            "",
            *condition_table(
                bench,
                [
                    r
                    for r in (
                        "calibrated",
                        "calibrated (relative only)",
                        "trainprove",
                        "meta-classifier",
                        "accuracy-threshold",
                    )
                    if r in rules
                ],
            ),
            "",
        ]
    if sequential:
        lines += [
            "### Sequential verdicts: queries to a verdict",
            "",
            "Evenly spaced suspects of each setting (`--sequential-limit`, every condition of the pool) "
            "and the same defenders, each "
            "rule alone in audits with `[validation] rounds = "
            f"{ROUNDS}` ([audit-file.md](audit-file.md#sequential-audits)): the suspect is asked "
            f"1/{ROUNDS} of every image set at a time and judged after each, until the rule decides. "
            "Queries per verdict are the images the suspect was asked (the validation set and, for the "
            "calibrated rule, the reference sets); the fixed design asks them all.",
            "",
            *sequential_table(bench, sequential),
            "",
        ]
    if ablations:
        lines += [
            "### What each part of the calibrated rule buys",
            "",
            "Its decisions recomputed from the same audits with a part taken away (`ablation()`: the "
            "accuracies are in each verdict's details, nothing is trained or queried again; the first row "
            "repeats the rule as shipped). Pooled into one population, the under-trained guilty references "
            "kept false clearing bounded for weak guilty suspects but made most innocent verdicts "
            "inconclusive; the intersection-union clearing keeps them as a sub-population of their own, "
            "compared on the gap.",
            "",
            "| variant | setting | false accusations | false clearings | inconclusive |",
            "|---|---|---|---|---|",
            *[
                f"| {r['variant']} | {r['setting']} | {r['false_accusations']}/{r['negatives']} | "
                f"{r['false_clearings']}/{r['positives']} | {r['inconclusive']:.3f} |"
                for r in ablations
            ],
            "",
        ]
    if demo:
        lines += [
            "## The demo pool",
            "",
            "The demo's 10 suspects (made by the shadow's own trainer), audited by the four generators: the "
            "easiest case, where most rules are right every time; 40 verdicts per rule cannot tell them "
            "apart.",
            "",
            *rule_table({n: rule_metrics([r for r in demo if r["test"] == n]) for n in rules}),
            "",
        ]
    lines += [
        "## Simulated audits",
        "",
        "The rules that judge bare answers, on `trainprove_core.simulate.SimulatedAudit()` (40 batches of "
        "125, shadow accuracy 0.90, same-source suspects within a 0.01 spread of it, other-source suspects "
        "0.05 below). These numbers describe the simulation; they show what each rule's alpha does and does "
        "not bound. (The calibrated rule needs reference models, so its rates under its own model are "
        "checked in plugins/trainprove-calibrated/tests.)",
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
    lines += ["", f"![error rates per rule]({w.stem}.png)", ""]
    # The both-worlds block (`--summary`) stays at the top of the regenerated page.
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(with_summary("\n".join(lines), summary_in(old)), encoding="utf-8")


SUMMARY_BEGIN = "<!-- both worlds: bench/decision_tests.py --summary writes this block -->"
SUMMARY_END = "<!-- end of both worlds -->"
SUMMARY_RULES = (
    "calibrated",
    "trainprove",
    "trainprove (paper_compat)",
    "meta-classifier",
    "accuracy-threshold",
    "welch",
    "trainprove-ent",
    "trainprove-sim",
    "random-guess",
)


def summary_block(records: Mapping[str, Path]) -> list[str]:
    """The both-worlds table at the top of docs/results.md: per world and setting, each rule's false
    accusation, false clearing, inconclusive and accuracy on decided verdicts (95% intervals), from the
    benchmark pools' records.json (world -> path)."""

    def cell(m: Mapping[str, Any], errors: str, total: str, rate: str) -> str:
        k, n, ci = m[errors], m[total], m[f"{rate}_ci"]
        return "n/a" if not n else f"{k}/{n} = {m[f'{rate}_rate']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    given = " ".join(f"--records {w}={p}" for w, p in records.items())
    benches = {
        name: json.loads(Path(path).read_text(encoding="utf-8"))["bench"] for name, path in records.items()
    }
    sizes = "; ".join(
        f"{name}: {len({r['suspect'] for r in bench if r['setting'] == 'styled'})} suspects per setting, "
        f"{len({r['defender'] for r in bench})} defenders"
        for name, bench in benches.items()
    )
    lines = [
        SUMMARY_BEGIN,
        "## Both worlds at a glance",
        "",
        "Every rule on the benchmark pools of suspects trained unlike the shadow "
        "([bench-pool.md](bench-pool.md)), per world and generator setting: digits (this page, below) "
        "and Fashion-MNIST ([results-fashion.md](results-fashion.md)). False accusation: innocent "
        "verdicts judged trained, over all innocent verdicts; false clearing: guilty verdicts judged not "
        "trained, over all guilty verdicts (an inconclusive verdict is neither error); inconclusive over "
        "all verdicts; accuracy over decided verdicts; exact 95% Clopper-Pearson intervals. Written by "
        f"`.venv/bin/python bench/decision_tests.py --summary {given}` from each world's records.json; "
        f"each world's page says how its verdicts were made ({sizes}).",
        "",
        "| world | setting | rule | false accusation [95% CI] | false clearing [95% CI] | inconclusive | "
        "accuracy decided [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, bench in benches.items():
        for setting in ("styled", "hard"):
            rows = [r for r in bench if r["setting"] == setting]
            tests = [t for t in SUMMARY_RULES if any(r["test"] == t for r in rows)]
            for test in tests:
                m = rule_metrics([r for r in rows if r["test"] == test])
                lines.append(
                    f"| {name} | {setting} | {test} | "
                    f"{cell(m, 'false_accusations', 'negatives', 'false_accusation')} | "
                    f"{cell(m, 'false_clearings', 'positives', 'false_clearing')} | "
                    f"{m['inconclusive_rate']:.3f} | "
                    f"{_ci(m['accuracy_decided'], m['accuracy_decided_ci'])} |"
                )
    return [*lines, "", SUMMARY_END]


def summary_in(text: str) -> list[str] | None:
    """The both-worlds block `text` holds (its lines), or None."""
    if SUMMARY_BEGIN not in text or SUMMARY_END not in text:
        return None
    return text[text.index(SUMMARY_BEGIN) : text.index(SUMMARY_END) + len(SUMMARY_END)].split("\n")


def with_summary(text: str, block: Sequence[str] | None) -> str:
    """`text` (a results page) with the both-worlds block right after its title: `block`, or else the
    block `text` already holds (so regenerating docs/results.md keeps it), or else none."""
    old = summary_in(text)
    if old is not None:
        start, end = text.index(SUMMARY_BEGIN), text.index(SUMMARY_END) + len(SUMMARY_END)
        text = text[:start].rstrip("\n") + "\n\n" + text[end:].lstrip("\n")
    block = block if block is not None else old
    if not block:
        return text
    title, _, rest = text.partition("\n")
    return title + "\n\n" + "\n".join(block) + "\n\n" + rest.lstrip("\n")


def write_plot(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["test"] for r in records))
    settings = [s for s in ("styled", "hard") if any(r["setting"] == s for r in records)]
    fig, axes = plt.subplots(1, len(settings), figsize=(7 * len(settings), 4.8), squeeze=False)
    series = (
        ("false_accusation_rate", "false_accusation_ci", "false accusation"),
        ("false_clearing_rate", "false_clearing_ci", "false clearing"),
        ("inconclusive_rate", None, "inconclusive"),
    )
    for ax, setting in zip(axes[0], settings, strict=True):
        metrics = {
            n: rule_metrics([r for r in records if r["test"] == n and r["setting"] == setting]) for n in names
        }
        x = np.arange(len(names))
        for i, (key, ci_key, label) in enumerate(series):
            values = np.array([metrics[n][key] for n in names])
            err = None
            if ci_key:
                err = [
                    values - np.array([metrics[n][ci_key][0] for n in names]),
                    np.array([metrics[n][ci_key][1] for n in names]) - values,
                ]
            ax.bar(x + (i - 1) * 0.27, values, 0.27, yerr=err, capsize=2, label=label)
        ax.axhline(ALPHA, color="k", lw=0.8, ls=":")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("rate (95% Clopper-Pearson)")
        ax.set_title(f"benchmark pool, {setting} generators")
        ax.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--world",
        choices=("digits", "fashion"),
        default="digits",
        help="the demo's world: its defenders, real source and audit files (default digits; fashion writes "
        "results-fashion.md and .png)",
    )
    parser.add_argument(
        "--pool-dir",
        type=Path,
        default=None,
        help="the pool bench/suspect_pool.py built (default: runs/bench-pool, runs/bench-pool-fashion)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="cache of image sets, models and answers (default: runs/bench/store, runs/bench-fashion/store)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="where results[-WORLD].md and .png go"
    )
    parser.add_argument(
        "--rules",
        default="",
        help="comma-separated rule names, as in the tables (default: every rule), e.g. "
        "'calibrated,trainprove,accuracy-threshold'",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--defenders",
        default="",
        help="comma-separated defenders that audit (default: the world's four); the others stay references",
    )
    parser.add_argument("--settings", default="styled,hard", help="which generator settings of the pool")
    parser.add_argument("--pools", default="bench,demo", help="which pools: bench, demo or both")
    parser.add_argument("--simulation-trials", type=int, default=2000, help="simulated suspects per kind")
    parser.add_argument("--progress", action="store_true", help="show progress")
    parser.add_argument("--limit", type=int, default=None, help="only the first N suspects per setting")
    parser.add_argument("--executor", default="local", help="the executor of every audit (local, ray)")
    parser.add_argument(
        "--sequential-limit",
        type=int,
        default=24,
        help="only N evenly spaced suspects per setting in the sequential audits (default 24: each round of "
        "each set is an answer set of its own, so they cost more store writes than queries)",
    )
    parser.add_argument(
        "--no-sequential",
        dest="sequential",
        action="store_false",
        help=f"skip the sequential audits ({', '.join(SEQUENTIAL_RULES)} in {ROUNDS} rounds)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="only write the both-worlds table at the top of OUT/results.md from the --records files",
    )
    parser.add_argument(
        "--records",
        action="append",
        default=[],
        metavar="WORLD=PATH",
        help="with --summary: a world's records.json (default: runs/bench/records.json and "
        "runs/bench-fashion/records.json)",
    )
    args = parser.parse_args(argv)
    if args.summary:
        if bad := [r for r in args.records if "=" not in r]:
            raise SystemExit(
                f"--records {bad[0]!r}: expected WORLD=PATH, e.g. fashion=runs/bench-fashion/records.json"
            )
        given = dict(r.split("=", 1) for r in args.records) or {
            "digits": "runs/bench/records.json",
            "fashion": "runs/bench-fashion/records.json",
        }
        page = args.out / "results.md"
        if missing := [f"{w}={p}" for w, p in given.items() if not Path(p).is_file()] + (
            [] if page.is_file() else [str(page)]
        ):
            raise SystemExit(f"--summary: no such file: {missing[0]} (run the world's benchmark first)")
        block = summary_block({w: Path(p) for w, p in given.items()})
        page.write_text(with_summary(page.read_text(encoding="utf-8"), block), encoding="utf-8")
        print(f"wrote the both-worlds table at the top of {page}", file=sys.stderr)
        return
    EXECUTOR["use"] = args.executor
    WORLD[:] = [bench_world(args.world)]
    if auditors := tuple(d for d in args.defenders.split(",") if d):
        if unknown := [d for d in auditors if d not in world().defenders]:
            raise SystemExit(f"unknown defender(s) {unknown}; known: {', '.join(world().defenders)}")
        WORLD[:] = [replace(world(), audited_by=auditors)]
    import os

    import torch

    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    torch.set_num_threads(args.threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    load_started = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    plugins = load_plugins(strict=True)
    runs = world().runs
    pool_dir = args.pool_dir or world().pool
    store = Store(args.store or runs / "store")
    rules = [r for r in args.rules.split(",") if r] or None
    known = {t.get("name", t["use"]) for t in tests_for(world().defenders[0])}
    if rules and (unknown := [r for r in rules if r not in known]):
        raise SystemExit(f"unknown rule(s) {unknown}; known: {', '.join(sorted(known))}")
    pools = args.pools.split(",")
    bench, setup = [], {}
    if "bench" in pools:
        bench, setup = bench_pool(
            pool_dir, store, runs, plugins, args.settings.split(","), args.progress, args.limit, rules
        )
    sequential = []
    if "bench" in pools and args.sequential:
        limit = min(args.limit or args.sequential_limit, args.sequential_limit)
        sequential = sequential_pool(
            pool_dir, store, runs, plugins, args.settings.split(","), args.progress, limit, rules
        )
    demo = demo_pool(store, runs, plugins, args.progress, rules) if "demo" in pools else []
    (runs / "records.json").write_text(
        json.dumps({"bench": bench, "demo": demo, "sequential": sequential}, indent=1), encoding="utf-8"
    )
    simulation = simulated_rates(args.simulation_trials)
    setup["seconds"] = time.perf_counter() - started
    setup["cpu_seconds"] = time.process_time() - cpu_started
    setup["load_start"] = load_started
    setup["load"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    shown = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--progress")]
    command = shlex.join([".venv/bin/python", "bench/decision_tests.py", *shown])
    ablations = ablation(runs) if bench else []
    md, png = args.out / f"{world().stem}.md", args.out / f"{world().stem}.png"
    write_markdown(md, ablations, bench, demo, simulation, setup, command, sequential)
    write_plot(png, bench or demo)
    print(f"wrote {md} and {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
