"""How much evidence labels carry: the calibrated rule's statistics and per-image likelihood ratios on the
benchmark pool, against what any threshold could decide.

    .venv/bin/python bench/label_evidence.py        # after bench/suspect_pool.py and bench/decision_tests.py

Two questions, for each setting (styled, hard) of the digits pool (docs/bench-pool.md):

1. **Would per-image evidence decide more?** Every reference model of the calibrated rule and every suspect
   answers the same validation images, so *which* images a model gets right can be compared, not only how
   many. The per-image log-likelihood ratio of a model's hits between the guilty and the innocent reference
   models (per image, the share of each population that gets it right, p_g(i) and p_i(i), smoothed
   (right + 1/2) / (n + 1)):

       llr = mean over images of log(p_g(i) / p_i(i)) if right, else log((1 - p_g(i)) / (1 - p_i(i)))

   cross-fitted so its null stays valid: an innocent reference is scored with the rates of the *other*
   sources' models (its whole source left out), a guilty one with the rates of the other guilty models. The
   rule is run with it in place of its statistics (`llr`), and in a union with them at half the error
   bounds each (`union`, Bonferroni: still alpha and beta in all). Over the generator's images (`V`), or
   over every image set (`V+R`).
2. **What could any rule decide?** For each statistic, the share of the suspects that learned the task
   that thresholds chosen *with the truth* (accuse above the 99th percentile of the innocent suspects'
   values, clear below the 5th percentile of the guilty ones') would decide: an optimistic bound on every
   rule that compares that statistic with a threshold at these error rates. And the same for a logistic
   regression over every statistic together, fitted on the three other defenders' suspects. Where every
   suspect returns probabilities, also for its confidence: the mean log-probability of the true class on
   the generator's images, and that less its mean over the references' images.

Everything it needs is in the benchmark's store (reference models and every answer): no model is trained
and no query is asked again; the verdicts are decided again so that each one's hits can be read.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"
ALPHA, BETA = 0.01, 0.05


def collect(
    pool: Path, store_dir: Path, out: Path, settings: Sequence[str], world: str = "digits"
) -> dict[str, list[dict]]:
    """Run the calibrated rule over the pool (everything cached) and keep, per defender, every reference
    model's and every suspect's hits."""
    import decision_tests as dt
    import torch
    from trainprove_calibrated import rule

    import trainprove_core.engine.verdicts as stored
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    torch.set_num_threads(1)
    dt.WORLD[:] = [dt.bench_world(world)]
    stored.stored_verdicts = lambda run, identity: None  # decide again: the hits are read in `decide`
    dumps: dict[tuple, dict] = {}
    decide, hits = rule.CalibratedTest.decide, rule.hits
    log_p: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(hits) -> (hits, log p(true class)) where given

    def keep_probabilities(answers: Any, truth: np.ndarray) -> np.ndarray:
        h = hits(answers, truth)
        if answers.probabilities is not None:
            p = np.asarray(answers.probabilities, dtype=float)[np.arange(len(truth)), np.asarray(truth)]
            log_p[id(h)] = (h, np.log(np.clip(p, 1e-6, 1.0)))
        return h

    def keep(self: Any, evidence: Any) -> Any:
        verdict = decide(self, evidence)
        run = evidence.run
        refs = self.build(run)
        entry = dumps.setdefault(
            (run.config.generator.use, id(refs)),
            {
                "defender": run.config.generator.use,
                "members": [(m.population, m.group, m.hits) for m in refs.members],
                "models": refs.models,
                "suspects": {},
            },
        )
        h = {"": rule.hits(evidence.suspect, evidence.true_labels)}
        for label, image_set in refs.sets.items():
            answers, index, _ = run.answers_upto(evidence.suspect_name, image_set, None)
            h[label] = rule.hits(answers, image_set.labels[index])
        confidence = {k: log_p[id(x)][1] for k, x in h.items() if id(x) in log_p}
        entry["suspects"][evidence.suspect_name] = {
            "hits": h,
            "decision": verdict.decision,
            "log_p": confidence,
        }
        return verdict

    rule.CalibratedTest.decide, rule.hits = keep, keep_probabilities
    plugins, store = load_plugins(strict=True), Store(store_dir)
    result = {}
    for setting in settings:
        dumps.clear()
        records, _ = dt.bench_pool(pool, store, out, plugins, [setting], False, rules=["calibrated"])
        truth = {(r["defender"], r["suspect"]): r for r in records}
        for entry in dumps.values():
            for name, s in entry["suspects"].items():
                r = truth[(entry["defender"], name)]
                s.update(truth=r["truth"], condition=r.get("condition"), learned=r.get("learned_task"))
        result[setting] = list(dumps.values())
    rule.CalibratedTest.decide, rule.hits = decide, hits
    return result


def rates(hits: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, the smoothed share of these models that get it right (unanswered images left out)."""
    h = np.array(hits, dtype=float)
    ok = h >= 0
    return (np.where(ok, h, 0.0).sum(0) + 0.5) / (ok.sum(0) + 1.0)


def llr(h: np.ndarray, p_g: np.ndarray, p_i: np.ndarray) -> float:
    ok = h >= 0
    right, wrong = np.log(p_g / p_i), np.log((1 - p_g) / (1 - p_i))
    return float(np.mean(np.where(h[ok] == 1, right[ok], wrong[ok])))


def llr_scores(audit: Mapping[str, Any], sets: Sequence[str]) -> tuple[np.ndarray, dict[str, float]]:
    """Every reference model's llr (cross-fitted: see the module's text) and every suspect's."""
    members = audit["members"]

    def weights(left_out: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for s in sets:
            pick = [(j, m) for j, m in enumerate(members) if s in m[2] and not left_out(j, m)]
            out[s] = (
                rates([m[2][s] for _, m in pick if m[0] == "guilty"]),
                rates([m[2][s] for _, m in pick if m[0] == "innocent"]),
            )
        return out

    def score(hits: Mapping[str, np.ndarray], w: Mapping[str, tuple]) -> float:
        return float(np.mean([llr(hits[s], *w[s]) for s in sets if s in hits]))

    ref = []
    for j, m in enumerate(members):
        if m[0] == "innocent":  # its whole source left out
            w = weights(lambda _, other, m=m: other[0] == "innocent" and other[1] == m[1])
        else:
            w = weights(lambda jj, _, j=j: jj == j)
        ref.append(score(m[2], w))
    everyone = weights(lambda *_: False)
    return np.array(ref), {n: score(s["hits"], everyone) for n, s in audit["suspects"].items()}


def labels_of(audit: Mapping[str, Any]) -> list[str]:
    return sorted({k for m in audit["members"] for k in m[2] if k})


def statistics(audit: Mapping[str, Any], name: str) -> tuple[dict[str, float], float]:
    """A suspect's calibrated statistics and its best accuracy over the image sets."""
    from trainprove_calibrated import rule

    h, labels = audit["suspects"][name]["hits"], labels_of(audit)
    acc_g, acc_r = rule.hit_rate(h[""]), [rule.hit_rate(h[label]) for label in labels]
    n_g, n_r = len(h[""]), len(h[labels[0]])
    stats = {st: rule.relative_error(acc_g, n_g, acc_r, n_r, st) for st in rule.STATISTICS}
    return stats, max([acc_g, *acc_r])


def separation(innocent: Any, guilty: Any) -> float:
    """The weaker side of `References.separation` for one statistic's populations: the guilty references'
    mean above the innocent ones', in innocent spreads (what accusing needs) or in guilty spreads (what
    clearing needs)."""
    gap = guilty.mean - innocent.mean
    return float(min(gap / innocent.sd, gap / guilty.sd))


def shipped(audit: Mapping[str, Any]) -> tuple[dict[str, tuple[str, float, float]], float]:
    """The shipped rule's decision and p-values per suspect, recomputed from the hits, and the weaker side
    of its references' separation (accusing on `relative`, clearing on `absolute`)."""
    from trainprove_calibrated import rule

    members = [
        rule.Member(p, g, h, bool(mo.get("weak")), float(mo.get("share", 1.0)))
        for (p, g, h), mo in zip(audit["members"], audit["models"], strict=True)
    ]
    labels = labels_of(audit)
    n = {k: len(next(m.hits[k] for m in members if k in m.hits)) for k in ["", *labels]}
    refs = rule.References(labels, {label: range(n[label]) for label in labels}, {}, {}, [], members, None)
    refs.innocent, refs.guilty = innocent, guilty = refs.populations({k: np.arange(v) for k, v in n.items()})
    out = {}
    for name in audit["suspects"]:
        st, best = statistics(audit, name)
        decision, p_i, p_g = rule.decide(
            st["relative"],
            innocent["relative"],
            guilty["absolute"],
            ALPHA,
            BETA,
            st["absolute"],
            guilty["pure"]["gap"],
            st["gap"],
        )
        out[name] = (decision if best >= 0.5 else INCONCLUSIVE, p_i, p_g)
    return out, min(refs.separation("relative", "absolute").values())


def verdict(p_innocent: float, p_guilty: float, alpha: float = ALPHA, beta: float = BETA) -> str:
    accuse, clear = p_innocent <= alpha, p_guilty <= beta
    return TRAINED if accuse and not clear else NOT_TRAINED if clear and not accuse else INCONCLUSIVE


def tally(rows: Sequence[tuple[str, str, Any]]) -> dict[str, Any]:
    c: Counter = Counter()
    for truth, decision, learned in rows:
        c["n"] += 1
        c["inconclusive"] += decision == INCONCLUSIVE
        if truth == NOT_TRAINED:
            c["innocent"] += 1
            c["fa"] += decision == TRAINED
        else:
            c["guilty"] += 1
            c["fc"] += decision == NOT_TRAINED
        if learned is not False:
            c["learned"] += 1
            c["inconclusive_learned"] += decision == INCONCLUSIVE
    return dict(c)


def rule_rows(dump: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Each variant's (truth, decision, learned) per verdict."""
    from trainprove_calibrated.rule import Population

    rows: dict[str, list] = defaultdict(list)
    for audit in dump:
        base, base_separation = shipped(audit)
        variants, separations = {}, {}
        for sets_name, sets in (("V", [""]), ("V+R", ["", *labels_of(audit)])):
            ref, sus = llr_scores(audit, sets)
            inn = [(v, m[1]) for v, m in zip(ref, audit["members"], strict=True) if m[0] == "innocent"]
            innocent = Population(np.array([v for v, _ in inn]), 0.0, np.array([g for _, g in inn]))
            guilty = Population(
                np.array([v for v, m in zip(ref, audit["members"], strict=True) if m[0] == "guilty"]), 0.0
            )
            variants[sets_name] = {n: (innocent.tail(v, True), guilty.tail(v, False)) for n, v in sus.items()}
            separations[sets_name] = separation(innocent, guilty)
        for name, s in audit["suspects"].items():
            learned, (decision, p_i0, p_g0) = s.get("learned"), base[name]
            _, best = statistics(audit, name)
            rows["calibrated (shipped)"].append((s["truth"], decision, learned))
            for sets_name, p in variants.items():
                p_i, p_g = p[name]
                rows[f"llr {sets_name}"].append(
                    (s["truth"], verdict(p_i, p_g) if best >= 0.5 else INCONCLUSIVE, learned)
                )
                union = verdict(min(p_i0, p_i), min(p_g0, p_g), ALPHA / 2, BETA / 2)
                rows[f"union {sets_name}"].append(
                    (s["truth"], union if best >= 0.5 else INCONCLUSIVE, learned)
                )
                # Chosen per audit from the references alone (the suspect plays no part): the statistic
                # whose populations lie further apart, in spreads.
                if separations[sets_name] > base_separation:
                    chosen = verdict(p_i, p_g) if best >= 0.5 else INCONCLUSIVE
                else:
                    chosen = decision
                rows[f"chosen {sets_name}"].append((s["truth"], chosen, learned))
        rows["audits choosing llr V"].append(separations["V"] > base_separation)
    return rows


def oracle(values: np.ndarray, guilty: np.ndarray) -> float:
    """The share decided by thresholds chosen with the truth: accuse above all but 1% of the innocent
    values, clear below all but 5% of the guilty ones."""
    inn, gui = np.sort(values[~guilty]), np.sort(values[guilty])
    t_accuse = inn[len(inn) - int(0.01 * len(inn)) - 1]
    t_clear = gui[int(0.05 * len(gui))]
    accuse, clear = values > t_accuse, values < t_clear
    return float((accuse ^ clear).mean())


def oracle_rows(dump: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per statistic (and all of them together), the oracle's share decided per defender, over the
    suspects that learned the task."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out: dict[str, list[float]] = defaultdict(list)
    X, Y, D = [], [], []
    for audit in dump:
        names = [n for n, s in audit["suspects"].items() if s.get("learned") is not False]
        y = np.array([audit["suspects"][n]["truth"] == TRAINED for n in names])
        _, llr_v = llr_scores(audit, [""])
        _, llr_all = llr_scores(audit, ["", *labels_of(audit)])
        feats = defaultdict(list)
        for n in names:
            st, _ = statistics(audit, n)
            for k, v in st.items():
                feats[f"{k} error"].append(v)
            feats["llr V"].append(llr_v[n])
            feats["llr V+R"].append(llr_all[n])
            log_p = audit["suspects"][n].get("log_p", {})
            if len(log_p) == 1 + len(labels_of(audit)):  # probabilities on every set
                own, others = log_p[""].mean(), np.mean([log_p[k].mean() for k in labels_of(audit)])
                feats["confidence (mean log p, generator's images)"].append(own)
                feats["confidence, relative (less the references')"].append(own - others)
            h = audit["suspects"][n]["hits"]
            X.append([*st.values(), llr_v[n], llr_all[n], *(float((h[k][h[k] >= 0]).mean()) for k in h)])
        Y += list(y)
        D += [audit["defender"]] * len(y)
        for k, v in feats.items():
            if len(v) == len(y):  # every suspect has it (probabilities: only where all returned them)
                out[k].append(oracle(np.array(v), y))
    X_, Y_, D_ = np.array(X), np.array(Y), np.array(D)
    for d in dict.fromkeys(D):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(X_[D_ != d], Y_[D_ != d])
        out["all together (logistic)"].append(oracle(model.decision_function(X_[D_ == d]), Y_[D_ == d]))
    return out


def report(dumps: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    lines = [
        "| setting | rule | false accusation | false clearing | inconclusive | inconclusive, learned |",
        "|---|---|---|---|---|---|",
    ]
    oracles = []
    for setting, dump in dumps.items():
        for name, rows in rule_rows(dump).items():
            if name.startswith("audits choosing"):
                lines.append(f"| {setting} | {name}: {sum(rows)} of {len(rows)} | | | | |")
                continue
            c = tally(rows)
            lines.append(
                f"| {setting} | {name} | {c.get('fa', 0)}/{c['innocent']} | {c.get('fc', 0)}/{c['guilty']} | "
                f"{c['inconclusive'] / c['n']:.3f} | {c['inconclusive_learned'] / c['learned']:.3f} |"
            )
        for name, shares in oracle_rows(dump).items():
            per = " ".join(f"{s:.2f}" for s in shares)
            oracles.append(f"| {setting} | {name} | {np.mean(shares):.3f} | {per} |")
    return [
        *lines,
        "",
        "| setting | statistic | decided by the oracle (mean) | per defender (the world's four, in order) |",
        "|---|---|---|---|",
        *oracles,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", type=Path, default=ROOT / "runs" / "bench-pool")
    p.add_argument("--store", type=Path, default=ROOT / "runs" / "bench" / "store")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "label-evidence")
    p.add_argument("--settings", default="styled,hard")
    p.add_argument("--world", default="digits", help="the pool's world (digits, fashion)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    cache = args.out / "hits.pkl"
    settings = args.settings.split(",")
    if cache.exists():
        dumps = pickle.loads(cache.read_bytes())
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        dumps = collect(args.pool, args.store, args.out, settings, args.world)
        cache.write_bytes(pickle.dumps(dumps))
    print("\n".join(report({s: dumps[s] for s in settings})))
    print(f"\n({time.perf_counter() - t0:.0f} s; hits kept in {cache})", file=sys.stderr)


if __name__ == "__main__":
    main()
