"""Attribution: per suspect, the candidate generators whose audit accuses it, and the error rates."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .spec import ACCUSED, CLEARED, NONE, UNSURE, Fleet, FleetSuspect

if TYPE_CHECKING:
    from ..engine import AuditReport


# ---- attribution ----------------------------------------------------------------------------------------


def _reason(verdict: Mapping[str, Any]) -> str:
    """Why a test decided as it did, in one sentence: its `details["reason"]`, or the explanation's last
    sentence (the verdict's own conclusion; the whole explanation is in the audit's report)."""
    reason = (verdict.get("details") or {}).get("reason")
    if isinstance(reason, str) and reason:
        return reason
    explanation = str(verdict.get("explanation", "")).removeprefix(f"{verdict['suspect']}: ")
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", explanation.strip())[-1]


def attribute_one(suspect: FleetSuspect, decisions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A suspect's attribution from one test's decision in each candidate's audit (`decisions`:
    candidate -> {"decision", "reason"}; decision "error" where it could not be judged)."""
    accusers = [g for g in suspect.candidates if decisions[g]["decision"] == ACCUSED]
    unsure = [g for g in suspect.candidates if decisions[g]["decision"] not in (ACCUSED, CLEARED)]
    said: dict[tuple[str, str], list[str]] = {}  # (decision, reason) -> candidates, so each reason once
    for g in unsure:
        said.setdefault((decisions[g]["decision"], decisions[g]["reason"]), []).append(g)
    why = "; ".join(f"{d} for {', '.join(gs)}: {reason}" for (d, reason), gs in said.items())
    if len(accusers) == 1:
        outcome, text = "from", f"from {accusers[0]}"
    elif accusers:
        outcome, text = "several", "from several: " + ", ".join(accusers)
    elif unsure:
        outcome, text = "undecided", "undecided"
        cleared = len(suspect.candidates) - len(unsure)
        if cleared:
            why += f"; cleared by the other {cleared}"
    else:
        outcome, text = "none", "none of the candidates"
    expected = suspect.expected
    correct = None if outcome == "undecided" or expected is None else set(accusers) == expected
    return {
        "attribution": outcome,
        "text": text,
        "generators": accusers,
        "undecided": unsure,
        "why": why,
        "correct": correct,
    }


OUTCOMES = {
    "from": "from one candidate",
    "several": "from several",
    "none": "none of the candidates",
    "undecided": "undecided",
}


def attribute(fleet: Fleet, reports: Mapping[tuple[str, str], AuditReport]) -> dict[str, Any]:
    """The attribution report (attribution.json): per suspect, the verdict of every test in every
    candidate's audit with a link to its evidence, and its attribution by `fleet.attribute_by`; per test,
    the attribution counts and, where the truth is known, the confusion table and error rates."""
    rows = []
    for s in fleet.suspects:
        verdicts: dict[str, dict[str, Any]] = {}
        for g in s.candidates:
            audit = fleet.audit(s.task, g)
            report = reports[(s.task, g)]
            entry = next(e for e in report.suspects if e["name"] == s.name)
            cells = {}
            for test in fleet.tests:
                found = [
                    (i, v)
                    for i, v in enumerate(report.verdicts)
                    if v["suspect"] == s.name and v["test"] == test
                ]
                if found:
                    i, v = found[0]
                    cells[test] = {
                        "decision": v["decision"],
                        "reason": _reason(v),
                        "statistic": v["statistic"],
                        "correct": v["correct"],
                        "evidence": f"{audit.path}/report.html#v{i}",
                    }
                elif entry.get("error"):
                    cells[test] = {"decision": "error", "reason": entry["error"], "evidence": None}
            verdicts[g] = {
                "report": f"{audit.path}/report.html",
                "report_json": f"{audit.path}/report.json",
                "accuracy": entry.get("accuracy"),
                "tests": cells,
            }
        by_test = {
            test: attribute_one(
                s,
                {
                    g: verdicts[g]["tests"].get(test, {"decision": "error", "reason": "no verdict"})
                    for g in s.candidates
                },
            )
            for test in fleet.tests
        }
        rows.append(
            {
                "suspect": s.name,
                "task": s.task,
                "truth": list(s.truth) if s.truth is not None else None,
                **by_test[fleet.attribute_by],
                "by_test": by_test,
                "verdicts": verdicts,
            }
        )
    flat = [
        {**v, "task": task, "defender": generator}
        for (task, generator), report in reports.items()
        for v in report.verdicts
    ]
    tests = {}
    for test in fleet.tests:
        counts = {o: sum(r["by_test"][test]["attribution"] == o for r in rows) for o in OUTCOMES}
        judged = [r["by_test"][test]["correct"] for r in rows if r["truth"] is not None]
        mine = [v for v in flat if v["test"] == test]
        tests[test] = {
            "counts": counts,
            "right": sum(c is True for c in judged),
            "wrong": sum(c is False for c in judged),
            "with_truth": len(judged),
            "confusion": confusion(fleet, mine) if judged and mine else None,
            "rates": rates(mine) if judged and mine else None,
        }
    return {
        "fleet": fleet.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "attribute_by": fleet.attribute_by,
        "tests": fleet.tests,
        "descriptions": _descriptions(reports),
        "tasks": fleet.tasks,
        "generators": fleet.generators,
        "audits": [
            {
                "task": a.task,
                "generator": a.generator,
                "report": f"{a.path}/report.html",
                "report_json": f"{a.path}/report.json",
                "audit_file": f"{a.path}/audit.toml",
                "errors": reports[(a.task, a.generator)].errors,
                "warnings": reports[(a.task, a.generator)].warnings,
            }
            for a in fleet.audits
        ],
        "suspects": rows,
        "by_test": tests,
        "verdicts": flat,
    }


def _descriptions(reports: Mapping[tuple[str, str], AuditReport]) -> dict[str, str]:
    """Each test's plugin, as the reports record it (test name -> plugin name)."""
    return {v["test"]: v["plugin"] for r in reports.values() for v in r.verdicts}


def rates(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Confusion counts and error rates of one decision test's verdicts (each with its `truth`)."""
    pos = [v for v in verdicts if v["truth"] == ACCUSED]
    neg = [v for v in verdicts if v["truth"] == CLEARED]
    decided = [v for v in verdicts if v["decision"] != UNSURE]

    def said(vs: Sequence[Mapping[str, Any]], decision: str) -> int:
        return sum(v["decision"] == decision for v in vs)

    return {
        "suspects": len(verdicts),
        "accuracy": sum(bool(v["correct"]) for v in verdicts) / len(verdicts) if verdicts else None,
        "false_accusation_rate": said(neg, ACCUSED) / len(neg) if neg else None,
        "false_clearing_rate": said(pos, CLEARED) / len(pos) if pos else None,
        "abstention_rate": 1 - len(decided) / len(verdicts) if verdicts else None,
        "false_accusations": said(neg, ACCUSED),
        "negatives": len(neg),
        "false_clearings": said(pos, CLEARED),
        "positives": len(pos),
    }


def confusion(fleet: Fleet, verdicts: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """rows: the suspects' true sources; columns: the candidate that audits; cell: [accused, verdicts,
    inconclusive]. Suspects without a truth are left out."""
    truth = {s.name: s.truth_label for s in fleet.suspects}
    labels = [t for t in (*fleet.generators, *fleet.known_sources, NONE) if t in truth.values()]
    labels += [t for t in dict.fromkeys(truth.values()) if t is not None and t not in labels]
    table = {t: {g: [0, 0, 0] for g in fleet.generators} for t in labels}
    for v in verdicts:
        row = truth.get(v["suspect"])
        if row is None:
            continue
        cell = table[row][v["defender"]]
        cell[0] += v["decision"] == ACCUSED
        cell[1] += 1
        cell[2] += v["decision"] == UNSURE
    return table


EXPLAIN = (
    "Each row is the source a suspect was trained on, each column the generator that audits it; a cell k/n "
    "says k of the n suspects of that row were flagged (judged trained-on-generator) by that defender, "
    "(m?) that m of them were judged inconclusive. Right is n/n where the row is the defender and 0/n "
    "everywhere else."
)


def format_confusion(table: Mapping[str, Mapping[str, list[int]]], label: Callable[[str], str] = str) -> str:
    """The confusion table as fixed-width text (`label` shortens the names)."""
    columns = list(next(iter(table.values()), {}))
    width = max([16, *(len(label(c)) + 2 for c in columns)])
    lines = ["suspect trained on \\ defender".ljust(30) + "".join(label(c).rjust(width) for c in columns)]
    for source, row in table.items():
        cells = []
        for c in columns:
            flagged, n, unsure = row[c]
            cells.append((f"{flagged}/{n}" + (f" ({unsure}?)" if unsure else "")).rjust(width))
        lines.append(label(source).ljust(30) + "".join(cells))
    return "\n".join(lines)


def format_rates(r: Mapping[str, Any]) -> str:
    def rate(k: int, n: int) -> str:
        return f"{k / n:.3f} ({k}/{n})" if n else "n/a"

    return (
        f"verification accuracy {r['accuracy']:.3f}   false-accusation rate "
        f"{rate(r['false_accusations'], r['negatives'])}   false-clearing rate "
        f"{rate(r['false_clearings'], r['positives'])}   inconclusive "
        f"{rate(round(r['abstention_rate'] * r['suspects']), r['suspects'])}"
    )
