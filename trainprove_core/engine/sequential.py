"""Sequential audits (`[validation] rounds` > 1): each suspect is asked round by round and judged.

One definition: an audit is *sequential* when its validation set is asked in more than one round
(`is_sequential`). Its tests are judged after every round when each of them is a sequential test, else
once, at the last look, on all the rounds (`looks`). The statistics of the looks are `trainprove_core.rounds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import AuditConfig
from ..records import Answers, Sequential, Verdict
from ..rounds import Look
from .run import AuditRun
from .verdicts import decide, record


def is_sequential(config: AuditConfig) -> bool:
    """Whether suspects are asked round by round (`[validation] rounds` > 1)."""
    return config.validation.rounds > 1


def looks(run: AuditRun) -> list[Look]:
    """The looks at which a sequential audit judges: after every round when every test is sequential,
    else only the last one (every round asked, each test judged once)."""
    k = run.config.validation.rounds
    every = all(isinstance(test, Sequential) and test.sequential for test in run.tests.values())
    return [Look(r, k) for r in range(1, k + 1)] if every else [Look(k, k)]


@dataclass
class Judged:
    """One suspect asked and judged: its `answers` to the validation images at `index` (the rounds
    asked), the answer sets' `keys`, every test's report record, and the last `look` asked."""

    answers: Answers
    index: np.ndarray
    keys: list[str]
    records: list[dict[str, Any]]
    look: Look


def judge_suspect(run: AuditRun, name: str, truth: str | None = None) -> Judged:
    """Ask the suspect `name` round by round and judge it (see `Judged`).

    At each look, each test that has not decided is judged on the answers so far; a test's first decision
    (or a futile inconclusive one, or its verdict at the last look) is its verdict, and asking stops once
    every test has one."""
    k = run.config.validation.rounds
    decided: dict[str, Verdict] = {}
    for look in looks(run):
        answers, index, keys = run.answers_upto(name, run.validation, look)
        evidence = run.evidence(name, answers, look, index)
        for t in run.config.tests:
            if t.name in decided:
                continue
            verdict = decide(run, t, evidence)
            verdict.details = {**verdict.details, "look": {"round": look.round, "rounds": k}}
            # A test may give up on a suspect before the last look (`details["futile"]`: more answers
            # cannot decide it); its inconclusive verdict is then final, and stops paying for queries.
            if verdict.decision != "inconclusive" or look.final or verdict.details.get("futile"):
                decided[t.name] = verdict
        if len(decided) == len(run.config.tests):
            break
    records = [record(run, decided[t.name], t, truth) for t in run.config.tests]
    return Judged(answers, index, keys, records, look)
