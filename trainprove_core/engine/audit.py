"""One audit, start to finish: `run_audit`, in numbered steps.

    audit file ─▶ plugins ─▶ shadow set (generator, shadow prompt) ─▶ shadow model (trainer)
                          └▶ validation set (generator, validation prompt)
               for each suspect: its answers on the validation set (cached per chunk)
               for each decision test and suspect: evidence ─▶ verdict
               ─▶ report.json + report.html

Everything expensive goes through the `Workspace`, which keys it in the content-addressed store: a second
run with one more suspect only queries that suspect, and a killed run resumes from its last saved chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress, secrets
from ..config import AuditConfig, SuspectConfig
from ..errors import TrainproveError
from ..plugins import PluginSet
from ..records import Closable, Executor, Metered, Remarks
from ..store import Store, content_key
from .jobs import raise_error
from .report import AuditReport, Controls, SuspectsJudged, build_report
from .run import AuditRun
from .sequential import is_sequential, judge_suspect
from .verdicts import apply_controls, control_not_learned, judge_control, verdicts


@dataclass
class AuditResult:
    """What `run_audit` gives: the report (also written as report.json), where it was written, the
    suspects that could not be judged (`errors`) and the observers that failed (`observer_errors`)."""

    report: AuditReport
    out_dir: Path
    errors: list[str] = field(default_factory=list)
    observer_errors: list[str] = field(default_factory=list)


def run_audit(
    config: AuditConfig,
    plugins: PluginSet,
    out_dir: str | Path,
    store: Store,
    show_progress: bool = True,
    html: bool = True,
    executor: Executor | None = None,
) -> AuditResult:
    """Run the audit `config` describes, write report.json (and report.html unless `html` is false) to
    `out_dir`, return both.

    Bad input found before any work (an unknown checkpoint, a label space that does not match, a decision
    test's settings) raises before `out_dir` is created. A suspect whose queries fail (dead endpoint,
    budget) is reported in `errors` and the audit goes on with the others; everything answered so far
    stays cached. An observer (lifecycle hook) that raises is reported in `errors`; the audit completes.
    The audit's `[executor]` is closed when it ends, on errors and Ctrl-C too; an `executor` passed in
    (several audits sharing one) is used instead and left open.
    """
    from ..report import write_report

    with AuditRun(config, plugins, store, show_progress, executor) as run:
        ws = run.workspace
        # 1. check: every suspect opened and its label space mapped, before any work
        run.open_suspects()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        title = f"audit {Path(config.source).name}"
        kinds = run.step_kinds()
        with progress.plan(sum(kinds.values()), title, show_progress, run.reserved_steps(), kinds):
            ws.observe("trainprove_before_audit", config=config, out_dir=out_dir)
            # 2. shadow: the shadow and validation sets, the shadow model and its answers
            run.shadow_answers  # noqa: B018 - made (or found in the store) now, in this order
            # 3. ask the suspects and judge them
            judged = ask_and_judge(run)
            # 4. controls: models whose truth is known overrule a test that gets them wrong
            controls = judge_controls(run, judged.verdicts)
        # 5. report: report.json and report.html, cleaned of secrets
        report = build_report(run, judged, controls)
        write_report(report, out_dir, html=html, accounts=ws.accounts)  # adds timings.report
        ws.observe("trainprove_after_audit", report=report.to_json(), out_dir=out_dir)
        # `errors` are the suspects that could not be judged (the CLI's exit code 1); an observer's
        # failure is in the report's errors and printed as a warning, it judges nobody.
        return AuditResult(
            report, out_dir, secrets.redact_all(judged.errors), secrets.redact_all(list(ws.observer_errors))
        )


def ask_and_judge(run: AuditRun) -> SuspectsJudged:
    """Every suspect asked and judged, its report entry and verdicts. In the fixed design every suspect is
    asked at once (independent models are queried concurrently where the executor can); in a sequential
    audit each one is asked round by round (`sequential.judge_suspect`)."""
    config, judged = run.config, SuspectsJudged()
    sequential = is_sequential(config)
    asked = (
        [None] * len(config.suspects)
        if sequential
        else run.workspace.answers_many(
            [(s.name, run.adapters[s.name], run.validation) for s in config.suspects]
        )
    )
    for suspect, outcome in zip(config.suspects, asked, strict=True):
        judge_one(run, suspect, outcome, sequential, judged)
    return judged


def judge_one(
    run: AuditRun, suspect: SuspectConfig, outcome: Any, sequential: bool, judged: SuspectsJudged
) -> None:
    """Judge one suspect (its answers already asked in `outcome`, unless `sequential`) into `judged`."""
    entry: dict[str, Any] = {
        "name": suspect.name,
        "use": suspect.adapter.use,
        "truth": suspect.truth,
        "distribution": suspect.adapter.distribution,
        "version": suspect.adapter.version,
        "identity": dict(run.adapters[suspect.name].identity),  # what it is: weights' hash, revision...
    }
    judged.suspects.append(entry)
    validation, began = run.validation, time.perf_counter()
    try:
        if sequential:  # asked round by round, each test judged until it decides
            rounds = judge_suspect(run, suspect.name, suspect.truth)
            answers, index = rounds.answers, rounds.index
            key = rounds.keys[0] if len(rounds.keys) == 1 else content_key({"slices": rounds.keys})
        else:
            answers, key = raise_error(outcome)
            index = np.arange(len(validation))
            run.note_asked(suspect.name, validation, len(validation))
        judged.hashes[f"answers:{suspect.name}"] = key
        entry.update(
            answers=key,
            accuracy=float(np.mean(answers.labels == validation.labels[index])),
            returns="probabilities" if answers.probabilities is not None else "labels",
            unanswered=int(np.count_nonzero(answers.labels < 0)),
        )
        if sequential:
            entry["rounds"] = {"asked": rounds.look.round, "of": rounds.look.rounds}
            judged.verdicts += rounds.records
        else:
            judged.verdicts += verdicts(run, suspect.name, answers, key, suspect.truth)
    except TrainproveError as exc:
        judged.errors.append(str(exc))
        entry["error"] = str(exc)
    finally:
        adapter = run.adapters[suspect.name]
        usage = adapter.usage if isinstance(adapter, Metered) else None  # a remote adapter's own count
        entry["queries_sent"] = (
            usage.sent if usage is not None else run.workspace.queries_sent.get(suspect.name, 0)
        )
        if usage is not None:
            entry["queries_paid"] = usage.paid
        remarks = adapter.remarks if isinstance(adapter, Remarks) else None  # what its answers had
        if remarks:
            entry["remarks"] = [str(r) for r in remarks]
        entry["queries_asked"] = sum(run.asked.get(suspect.name, {}).values())
        entry["queries_fixed_design"] = sum(run.fixed_queries.get(suspect.name, {}).values())
        if isinstance(adapter, Closable):
            adapter.close()
        entry["seconds"] = round(time.perf_counter() - began, 3)


def judge_controls(run: AuditRun, suspects_verdicts: list[dict[str, Any]]) -> Controls:
    """Train and judge the negative and positive controls, and let them overrule the suspects' verdicts:
    a control that did not learn the task is reported as failed and overrules nothing."""
    config, ws, controls = run.config, run.workspace, Controls()
    classes = config.task.num_classes
    if config.negative_control is not None and config.control_set is not None:
        use = config.negative_control.use
        images = ws.image_set("negative-control", ws.generator(config.negative_control), config.control_set)
        made, controls.hashes["negative_control_model"], learned = judge_control(
            run, f"negative control ({use})", config.trainer, images, "negative"
        )
        controls.negative = {"source": use, "verdicts": made, "accuracy_own_images": learned}
        what = f"a model trained on {use}'s images"
        failed = control_not_learned("negative", what, learned, "its own training images", classes)
        controls.warnings += [failed] if failed else apply_controls(suspects_verdicts, made, "negative", what)
    if config.positive_control is not None and config.positive_set is not None:
        use = config.positive_control.use
        images = ws.image_set("positive-control", run.generator, config.positive_set)
        made, controls.hashes["positive_control_model"], learned = judge_control(
            run, f"positive control ({use})", config.positive_control, images, "positive"
        )
        controls.positive = {"trainer": use, "verdicts": made, "accuracy_own_images": learned}
        what = f"a model trained on {config.generator.use}'s own images with another recipe"
        where = f"{config.generator.use}'s validation images"
        failed = control_not_learned("positive", what, learned, where, classes)
        controls.warnings += [failed] if failed else apply_controls(suspects_verdicts, made, "positive", what)
    return controls
