"""Judging in the fixed design: every decision test on a model's evidence, the verdict cache, controls.

A verdict becomes a report record (`verdict_record`). An unchanged verdict is not decided again: the
records are kept in the store (`verdicts`), keyed by everything a decision test reads. Controls (a model
known not to be trained on the generator, one known to be) overrule a test that gets them wrong
(`apply_controls`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from .. import __version__
from ..config import PluginTable
from ..evidence import declined
from ..records import Answers, Evidence, ImageSet, Verdict
from .run import AuditRun

VERDICTS = "verdicts.json"
"""The file of a stored set of verdict records (`verdicts`)."""

NEGATIVE, POSITIVE = "not-trained-on-generator", "trained-on-generator"


def verdict_record(verdict: Verdict, truth: str | None, registered: Any) -> dict[str, Any]:
    """A verdict as the report writes it, with the `truth` and the plugin that decided it."""
    record = {
        "suspect": verdict.suspect,
        "test": verdict.test,
        "decision": verdict.decision,
        "statistic": verdict.statistic,
        "threshold": verdict.threshold,
        "p_value": verdict.p_value,
        "alpha": verdict.alpha,
        "n": verdict.n,
        "effect_size": verdict.effect_size,
        "explanation": verdict.explanation,
        "truth": truth,
        "correct": None if truth is None or verdict.decision == "inconclusive" else verdict.decision == truth,
        "quantity": verdict.quantity,
        "sample": verdict.sample,
        "suspect_value": verdict.suspect_value,
        "boundary": verdict.boundary,
        "details": verdict.details,
        "plugin": registered.plugin,
        "distribution": registered.distribution,
        "version": registered.version,
    }
    # JSON has no infinity: a statistic of +inf (a perfect shadow) is written as null, its decision stands.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def decide(run: AuditRun, test_cfg: Any, evidence: Evidence) -> Verdict:
    """One decision test's verdict on `evidence` (declined where it needs probabilities it lacks)."""
    test = run.tests[test_cfg.name]
    if test.needs == "probabilities" and evidence.suspect.probabilities is None:
        return declined(
            evidence.suspect_name,
            test_cfg.name,
            "it needs probabilities and this suspect answers labels only",
        )
    if test.needs == "probabilities" and evidence.shadow.probabilities is None:
        return declined(
            evidence.suspect_name,
            test_cfg.name,
            "it needs probabilities and the shadow model answers labels only",
        )
    verdict = test.decide(evidence)
    verdict.test = test_cfg.name
    return verdict


def record(run: AuditRun, verdict: Verdict, test_cfg: Any, truth: str | None) -> dict[str, Any]:
    """`verdict` as a report record, once observers have seen it."""
    run.workspace.observe("trainprove_after_verdict", verdict=verdict)
    return verdict_record(verdict, truth, run.plugins.decision_test(test_cfg.test.use))


def judge(run: AuditRun, evidence: Evidence, truth: str | None = None) -> list[dict[str, Any]]:
    """Every decision test's verdict on one model's evidence, as report records."""
    return [record(run, decide(run, t, evidence), t, truth) for t in run.config.tests]


def verdicts(
    run: AuditRun, name: str, answers: Answers, answers_key: str, truth: str | None
) -> list[dict[str, Any]]:
    """Every decision test's verdict on the model `name`, whose answers on the validation set are
    `answers` (store key `answers_key`), as report records with the `truth`.

    An unchanged verdict is not decided again: the records are kept in the store, keyed by everything
    a decision test reads (the audit file less its suspects and executor, the tests' plugins and
    versions, the suspect's name and answers, the shadow's answers, the validation set), and taken
    from there on the next run (observers still see every verdict)."""
    identity = verdicts_identity(run, name, answers_key)
    records = stored_verdicts(run, identity)
    accounts = run.workspace.accounts
    if records is not None:
        accounts.add("verdicts_reused", len(records))
        names = [f.name for f in dataclass_fields(Verdict)]
        for stored in records:
            verdict = Verdict(**{k: stored[k] for k in names if k in stored})
            run.workspace.observe("trainprove_after_verdict", verdict=verdict)
    else:
        with accounts.phase("decisions"):
            made = judge(run, run.evidence(name, answers))
        accounts.add("verdicts_made", len(made))
        text = json.dumps(made, default=_plain)
        records = json.loads(text)  # as a re-run will read them, so both runs report the same
        run.store.directory("verdicts", identity, lambda tmp: (tmp / VERDICTS).write_text(text))
    return [with_truth(r, truth) for r in records]


def verdicts_identity(run: AuditRun, name: str, answers_key: str) -> dict[str, Any]:
    """What keys the stored verdicts on the model `name` whose answers have the key `answers_key`."""
    config = run.config
    doc = {k: v for k, v in config.public_document().items() if k not in ("suspect", "executor")}
    return {
        "kind": "verdicts",
        "trainprove": __version__,
        "audit": doc,
        "tests": [[t.name, t.test.use, t.test.distribution, t.test.version] for t in config.tests],
        "suspect": name,
        "answers": answers_key,
        "shadow_answers": run.shadow_answers_key,
        "validation": run.validation.key,
    }


def stored_verdicts(run: AuditRun, identity: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The stored records of `identity`, or None: none stored, unreadable, or not this audit's tests."""
    if not run.store.has("verdicts", identity):
        return None
    try:
        records = json.loads((run.store.location("verdicts", identity) / VERDICTS).read_text())
    except (OSError, ValueError):
        return None  # unreadable: decided again
    tests = [t.name for t in run.config.tests]
    if not isinstance(records, list) or [r.get("test") for r in records] != tests:
        return None
    return records


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists, anything else as its text (for JSON)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def with_truth(stored: Mapping[str, Any], truth: str | None) -> dict[str, Any]:
    """A record with this audit's `truth` (and whether its decision is correct)."""
    decision = stored["decision"]
    correct = None if truth is None or decision == "inconclusive" else decision == truth
    return {**stored, "truth": truth, "correct": correct}


def judge_control(
    run: AuditRun, name: str, trainer: PluginTable, images: ImageSet, kind: str
) -> tuple[list[dict[str, Any]], str, float]:
    """Train a control model on `images` with `trainer`, and judge it like a suspect whose truth is
    known (`kind`: "negative" is not trained on the generator, "positive" is); its verdicts, its key, and
    how well it learned the task: its accuracy on its own source's images (the validation set for the
    positive control; for the negative control its training images, since the generator's may be far from
    what it learned)."""
    adapter, key = run.workspace.shadow_model(trainer, images)
    run.adapters[name] = adapter
    answers, answers_key = run.suspect_answers(name, adapter)
    truth = NEGATIVE if kind == "negative" else POSITIVE
    if kind == "positive":
        learned = accuracy(answers, run.validation)
    else:
        own, _ = run.workspace.answers(name, adapter, images)
        learned = accuracy(own, images)
    return verdicts(run, name, answers, answers_key, truth), key, learned


def accuracy(answers: Answers, images: ImageSet) -> float:
    """The share of `images` a model's `answers` got right (an unanswered image counts as wrong)."""
    return float((answers.labels == images.labels).mean()) if len(images) else 0.0


def near_chance(accuracy: float, num_classes: int) -> bool:
    """Whether a model scoring `accuracy` on its own source's images has not learned the task: below chance
    plus 0.1 (the shadow's warning and the controls' use the same line)."""
    return accuracy < 1.0 / num_classes + 0.1


def control_not_learned(kind: str, what: str, learned: float, where: str, num_classes: int) -> str | None:
    """The warning of a control that did not learn the task (near chance on its own source's images), or
    None. Such a control says nothing about the tests: nothing is overruled by it."""
    if not near_chance(learned, num_classes):
        return None
    chance = 1.0 / num_classes
    return (
        f"{kind} control failed: {what} scores {learned:.3f} on {where}, near chance ({chance:.3f}): it did "
        "not learn the task, so it says nothing about the decision tests and nothing was overruled by it. "
        "Give it a recipe that learns (its table inherits [shadow]'s trainer keys; change only what a "
        "suspect's trainer would vary: arch, epochs, lr, crop_scale)."
    )


def apply_controls(
    verdicts: list[dict[str, Any]], control_verdicts: list[dict[str, Any]], kind: str, what: str
) -> list[str]:
    """Controls decide, not only warn. Where a test accuses the negative control (a model known not to be
    trained on the generator), that test's accusations in this audit become `inconclusive`; where a test
    clears the positive control (a model known to be trained on it), its clearings do. `what` describes
    the control. Returns the warnings."""
    wrong, overruled = {"negative": (POSITIVE, "accusations"), "positive": (NEGATIVE, "clearings")}[kind]
    warnings = []
    for v in control_verdicts:
        if v["decision"] != wrong:
            continue
        warnings.append(
            f"{kind} control failed: {v['test']} judged {what} {wrong} (it is not); its {overruled} in this "
            "audit are reported inconclusive."
        )
        for rec in verdicts:
            if rec["test"] == v["test"] and rec["decision"] == wrong:
                rec["details"] = {**rec["details"], "overruled": f"{kind} control judged {wrong}"}
                rec["explanation"] = (
                    f"{rec['suspect']}: inconclusive: {v['test']} would say {wrong}, but it says the same "
                    f"of {what}. Was: " + rec["explanation"]
                )
                rec["decision"] = "inconclusive"
                rec["correct"] = None
    return warnings
