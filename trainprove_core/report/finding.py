"""The finding: what the report says first, in sentences a person can quote.

Which rule governs: the test the audit file names with `[[test]] governs = true`; by default the
calibrated rule where the audit ran it (the only rule here whose verdicts bound both errors: false
accusation by its alpha, false clearing by its beta), else the audit's first test. Per suspect, one
sentence: the governing rule's verdict, its p-value against its level, and what that p-value means in
the direction that rule actually tests (an accusation by TrainProVe bounds nothing, and says so); the
other rules' verdicts beside it, a disagreement marked as one. The generator's and each suspect's
identity come from report.json: the audit file as given (secrets masked) and the identities the plugins
reported (weights' SHA-256, revisions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .reading import flatten, records
from .words import CELL_CLASS, INCONCLUSIVE, NOT_TRAINED, SHORT, TRAINED, finite, fmt, fmt_p, said

if TYPE_CHECKING:
    from ..engine.report import AuditReport

GOVERNS = "governs"
"""The `[[test]]` key that names the governing test."""

CALIBRATED = "calibrated"
GRUBBS = {"trainprove": "batches", "trainprove-ent": "batches", "trainprove-sim": "classes"}
"""TrainProVe's tests (one-sided Grubbs against the shadow's own population) and what their sample is."""

IDENTITY_KEYS = ("sha256", "hash", "commit", "revision", "hub_id", "url", "model", "checkpoint", "path")
"""Parts of a key that make it part of a model's identity on the first screen (the rest is one click down)."""


@dataclass(frozen=True)
class Governing:
    """The test whose verdicts are the finding, and why it is that one."""

    test: str | None
    why: str


@dataclass
class Finding:
    """One suspect's finding: the governing verdict in one sentence, the others' decisions."""

    suspect: str
    decision: str | None
    sentence: str
    index: int | None = None
    others: list[dict[str, Any]] = field(default_factory=list)
    identity: list[tuple[str, str]] = field(default_factory=list)

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        return [o for o in self.others if o["disagrees"]]


def _tests_in_file(report: AuditReport) -> list[Mapping[str, Any]]:
    audit = report.manifest.get("audit") if isinstance(report.manifest, Mapping) else None
    return records(audit.get("test")) if isinstance(audit, Mapping) else []


def test_names(report: AuditReport) -> list[str]:
    """Every test of the audit, in the audit file's order (then any other that gave a verdict)."""
    names = [str(t.get("name") or t.get("use")) for t in _tests_in_file(report)]
    for v in records(report.verdicts):
        if str(v.get("test")) not in names:
            names.append(str(v.get("test")))
    return names


def rules(report: AuditReport) -> dict[str, str]:
    """Each test's rule (test name -> the registration its `[[test]]` table uses), from the audit file;
    a test the manifest does not list (an older report) goes by its own name."""
    uses = {str(t.get("name") or t.get("use")): str(t.get("use")) for t in _tests_in_file(report)}
    for v in records(report.verdicts):
        uses.setdefault(str(v.get("test")), str(v.get("test")))
    return uses


def governing_test(report: AuditReport) -> Governing:
    """Which test's verdicts the report states as the finding, and why (see the module's docstring)."""
    names = test_names(report)
    for t in _tests_in_file(report):
        if t.get(GOVERNS) is True:
            return Governing(
                str(t.get("name") or t.get("use")),
                "the audit file names it (governs = true in its [[test]] table)",
            )
    uses = rules(report)
    for name in names:
        if uses.get(name) == CALIBRATED:
            return Governing(
                name,
                "by default the calibrated rule governs where the audit runs it: it is the one rule here "
                "whose verdicts bound both errors, a false accusation by its alpha and a false clearing "
                "by its beta (for suspects trained like its reference models); an audit file names "
                "another with governs = true in a [[test]] table",
            )
    if not names:
        return Governing(None, "the audit ran no test")
    return Governing(
        names[0],
        "by default the audit's first test governs where it runs no calibrated rule (an audit file names "
        "another with governs = true in a [[test]] table)",
    )


def against(p: Any, level: Any, name: str = "p", symbol: str = "α") -> str:
    """The p-value against its level ("p = 0.003 ≤ α = 0.01"), the relation computed, never assumed."""
    pf, lf = finite(p), finite(level)
    relation = "against" if pf is None or lf is None else ("≤" if pf <= lf else ">")
    return f"{name} = {fmt_p(p)} {relation} {symbol} = {fmt(level, 4)}"


def meaning(v: Mapping[str, Any], generator: str, rule: str | None = None) -> str:
    """What the verdict's p-value says, in the direction its rule (the test's registration name, by
    default the test's name) tests; never more than the rule claims. Empty where the verdict gives no
    p-value to read."""
    decision, plugin = v.get("decision"), rule or str(v.get("test"))
    details = v.get("details") if isinstance(v.get("details"), Mapping) else {}
    p, alpha = v.get("p_value"), v.get("alpha")
    images = f"{generator}'s images"
    if details.get("declined") or details.get("overruled"):
        return ""
    if plugin == CALIBRATED:
        beta, p_guilty = details.get("beta"), details.get("p_guilty")
        if decision == INCONCLUSIVE:  # both p-values, where it got as far as computing them
            if p_guilty is None:
                return ""
            return f"{against(p, alpha, 'p_innocent')}; {against(p_guilty, beta, 'p_guilty', 'β')}."
        if decision == TRAINED:
            return (
                f"{against(p, alpha, 'p_innocent')}: a model not trained on {images}, trained "
                f"like the rule's reference models, would score this high with probability at most "
                f"{fmt_p(p)}."
            )
        return (
            f"{against(p_guilty, beta, 'p_guilty', 'β')}: a model trained on {images} (wholly or "
            f"in part), like the rule's reference models, would score this low with probability at most "
            f"{fmt_p(p_guilty)}."
        )
    if decision == INCONCLUSIVE:
        return ""
    if plugin in GRUBBS or (plugin == "welch" and details.get("null", "trained") == "trained"):
        side = "high" if details.get("side") == "high" else "low"
        like = "like the shadow model" if plugin in GRUBBS else "scoring within the margin of the shadow"
        if decision == NOT_TRAINED:
            return (
                f"{against(p, alpha)}: a model trained on {images} {like} would score "
                f"this {side} with probability at most {fmt_p(p)} (under the rule's normal model)."
            )
        return (
            f"{against(p, alpha)}: its score is in line with a model trained on {images} "
            f"{like}. This rule bounds only how often it wrongly clears; how often it wrongly accuses is not "
            "bounded (it is measured: docs/results.md)."
        )
    if plugin == "welch":  # null = "not-trained": a rejection accuses
        if decision == TRAINED:
            return (
                f"{against(p, alpha)}: a model not trained on {images} (scoring below the "
                f"shadow by the margin or more) would score this high with probability at most {fmt_p(p)}."
            )
        return (
            f"{against(p, alpha)}: not shown to be trained on {images}; this direction "
            "bounds only how often it wrongly accuses, not how often it wrongly clears."
        )
    if plugin == "random-guess":
        return "A seeded coin: it says nothing about the suspect (the floor any rule must beat)."
    if p is None or alpha is None:
        return "This rule states no p-value and claims no error rate."
    return f"p = {fmt_p(p)}, α = {fmt(alpha, 4)} (what p bounds: the {plugin} rule's documentation)."


def sentence(v: Mapping[str, Any], test: str, generator: str, rule: str | None = None) -> str:
    """The quotable finding of one verdict: who, the verdict, the rule, and what its p-value means."""
    suspect, decision = str(v.get("suspect")), v.get("decision")
    details = v.get("details") if isinstance(v.get("details"), Mapping) else {}
    head = f"{suspect}: {said(decision, generator)}, by the rule {test}"
    if details.get("declined"):
        return f"{head}: the rule declined ({details.get('reason') or v.get('explanation', '')})."
    if details.get("overruled"):
        return f"{head}, overruled by a control: {v.get('explanation', '')}"
    if decision == INCONCLUSIVE:
        reason = details.get("reason")
        why = f"{head}: {reason}." if reason else f"{head}. {v.get('explanation', '')}"
        return f"{why} {meaning(v, generator, rule)}".rstrip()
    return f"{head}. {meaning(v, generator, rule)}".rstrip()


def _names_weights(key: str) -> bool:
    return any(part in key.lower() for part in IDENTITY_KEYS)


def identity_rows(
    given: Mapping[str, Any], identity: Any, every_setting: bool = True
) -> list[tuple[str, str]]:
    """A model's identity on the first screen: its settings as the audit file gives them (secrets
    masked; every one that is set, or with `every_setting` false only those that name the weights: a
    path, URL, revision), then what its plugin reported that names the weights (hashes, revisions, ids)."""
    rows = [
        (str(k), str(v))
        for k, v in flatten({k: v for k, v in given.items() if k != "use" and v is not None})
        if every_setting or _names_weights(k)
    ]
    for key, value in flatten(identity if isinstance(identity, Mapping) else {}):
        if _names_weights(key) and (key, str(value)) not in rows:
            rows.append((key, str(value)))
    return rows


def generator_identity(report: AuditReport) -> tuple[str, list[tuple[str, str]]]:
    """The generator's plugin, and its identity rows (see `identity_rows`)."""
    generator = report.generator if isinstance(report.generator, Mapping) else {}
    audit = report.manifest.get("audit") if isinstance(report.manifest, Mapping) else None
    given = audit.get("generator") if isinstance(audit, Mapping) else None
    given = given if isinstance(given, Mapping) else {}
    return str(generator.get("use", "?")), identity_rows(given, generator.get("identity"))


def findings(report: AuditReport, governing: Governing) -> list[Finding]:
    """Per suspect (in the report's order), its finding by the governing test."""
    generator = str((report.generator or {}).get("use", "the generator"))
    audit = report.manifest.get("audit") if isinstance(report.manifest, Mapping) else None
    given = {
        str(s.get("name")): s for s in records(audit.get("suspect") if isinstance(audit, Mapping) else [])
    }
    by_suspect: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, v in enumerate(records(report.verdicts)):
        by_suspect.setdefault(str(v.get("suspect")), []).append((i, v))
    names = [str(s.get("name")) for s in records(report.suspects)]
    names += [n for n in by_suspect if n not in names]
    entries = {str(s.get("name")): s for s in records(report.suspects)}
    uses = rules(report)
    out = []
    for name in names:
        entry = entries.get(name, {})
        mine = by_suspect.get(name, [])
        ruling = next(((i, v) for i, v in mine if str(v.get("test")) == governing.test), None)
        if ruling is None:
            why = entry.get("error") or f"the rule {governing.test} gave no verdict on it"
            found = Finding(name, None, f"{name}: not judged: {why}")
        else:
            i, v = ruling
            test = str(governing.test)
            found = Finding(name, v.get("decision"), sentence(v, test, generator, uses.get(test)), index=i)
        for i, v in mine:
            if ruling is not None and i == ruling[0]:
                continue
            disagrees = ruling is not None and v.get("decision") != ruling[1].get("decision")
            found.others.append(
                {
                    "test": str(v.get("test")),
                    "index": i,
                    "decision": v.get("decision"),
                    "disagrees": disagrees,
                }
            )
        given_settings = {k: v for k, v in given.get(name, {}).items() if k not in ("name", "truth")}
        adapter = entry.get("use") or given_settings.get("use")
        found.identity = ([("adapter", str(adapter))] if adapter else []) + identity_rows(
            given_settings, entry.get("identity"), every_setting=False
        )
        out.append(found)
    return out


def disagreement_line(found: Sequence[Finding]) -> str:
    """How many suspects the other rules judge otherwise (the report shows each)."""
    n = sum(1 for f in found if f.disagreements)
    if not n:
        return "Every other rule agrees with the governing one on every suspect."
    return (
        f"On {n} of {len(found)} suspect{'s' if len(found) != 1 else ''} another rule decides otherwise; "
        "the governing rule's verdict is the finding, the others are shown beside it."
    )


def finding_view(report: AuditReport) -> dict[str, Any]:
    """What the page's first screen shows: the generator's identity, the governing rule and why, and per
    suspect its finding, its identity and the other rules' decisions."""
    generator, rows = generator_identity(report)
    governing = governing_test(report)
    found = findings(report, governing)
    return {
        "generator": generator,
        "identity": rows,
        "test": governing.test,
        "why": governing.why,
        "several": len(test_names(report)) > 1,
        "disagreement": disagreement_line(found),
        "suspects": [
            {
                "suspect": f.suspect,
                "cls": CELL_CLASS.get(f.decision, ""),
                "said": said(f.decision, generator) if f.decision else "not judged",
                "sentence": f.sentence,
                "index": f.index,
                "identity": f.identity,
                "others": [
                    {**o, "cls": CELL_CLASS.get(o["decision"], ""), "text": SHORT.get(o["decision"], "?")}
                    for o in f.others
                ],
            }
            for f in found
        ],
    }
