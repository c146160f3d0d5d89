"""report.json as the engine builds it: what an audit found, typed (`AuditReport`), built in one place
(`build_report`)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .. import __version__, secrets
from .run import AuditRun
from .verdicts import accuracy, near_chance


@dataclass
class SuspectsJudged:
    """What asking and judging the suspects gave: each one's report entry, every verdict record, the
    suspects that could not be judged (`errors`) and their answer sets' keys (`hashes`)."""

    suspects: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class Controls:
    """The controls' report entries (None without one), the warnings of those a test got wrong, and the
    control models' keys."""

    negative: dict[str, Any] | None = None
    positive: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class AuditReport(Mapping[str, Any]):
    """What one audit found: report.json, typed. `to_json()` is report.json's document (its keys in this
    order); `from_json` reads one back. It is also a read-only mapping of those keys, for scripts written
    against report.json.

    Each suspect's entry (`suspects`) and each verdict record (`verdicts`) are report.json's objects;
    `manifest` says what the audit was made from (the audit file, seeds, plugins, the store keys)."""

    trainprove_version: str
    created: str
    wall_seconds: float
    task: dict[str, Any]
    generator: dict[str, Any]
    shadow: dict[str, Any]
    validation: dict[str, Any]
    suspects: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    negative_control: dict[str, Any] | None
    positive_control: dict[str, Any] | None
    warnings: list[str]
    errors: list[str]
    timings: dict[str, float]
    counts: dict[str, int]
    manifest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """report.json's document."""
        return {name: getattr(self, name) for name in _KEYS}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AuditReport:
        return cls(**{name: doc[name] for name in _KEYS})

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)


_KEYS = tuple(f.name for f in fields(AuditReport))


def shadow_warning(score: float, num_classes: int) -> str | None:
    """The warning of a shadow model that did not learn the task (near chance), or None."""
    if not near_chance(score, num_classes):
        return None
    chance = 1.0 / num_classes
    return (
        f"the shadow model scores {score:.3f} on its own generator's validation images, near "
        f"chance ({chance:.3f}): it did not learn the task from the shadow set, so verdicts that compare "
        "a suspect with it say nothing. Train it longer or with a recipe that suits the image size "
        "([shadow] epochs, lr, batch_size, arch; `trainprove plugins timm` lists every key)."
    )


def build_report(run: AuditRun, judged: SuspectsJudged, controls: Controls) -> AuditReport:
    """report.json of the audit `run` (its timings so far), cleaned of secrets: the one place the report's
    text is redacted (a server's answer quoted in an error, a token a plugin put in an explanation), so
    report.json, report.html and what the CLI prints are clean."""
    config, task, ws = run.config, run.task, run.workspace
    shadow_accuracy = accuracy(run.shadow_answers, run.validation)
    warnings = list(controls.warnings)
    warning = shadow_warning(shadow_accuracy, task.num_classes)
    if warning is not None:
        warnings.insert(0, warning)
    hashes = {
        "shadow_set": run.shadow_set.key,
        "validation_set": run.validation.key,
        "shadow_model": run.shadow_key,
        "shadow_answers": run.shadow_answers_key,
        **judged.hashes,
        **controls.hashes,
    }
    report = AuditReport(
        trainprove_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        wall_seconds=round(ws.accounts.total(), 2),
        task={"classes": list(task.classes), "image_size": task.image_size},
        generator={"use": config.generator.use, "identity": dict(run.generator.identity)},
        shadow={
            "images": len(run.shadow_set),
            "model": run.shadow_key,
            "validation_accuracy": shadow_accuracy,
        },
        validation={
            "images": len(run.validation),
            "batches": len(run.batches),
            "batch_size": config.validation.batch_size,
        },
        suspects=judged.suspects,
        verdicts=judged.verdicts,
        negative_control=controls.negative,
        positive_control=controls.positive,
        warnings=warnings,
        errors=judged.errors + ws.observer_errors,
        timings=ws.accounts.timings(),
        counts=dict(ws.accounts.counts),
        manifest={
            "audit_file": config.source,
            "audit": config.public_document(),
            "seeds": {
                "audit": config.seed,
                "shadow": config.shadow.seed,
                "validation": config.validation.seed,
            },
            "plugins": [
                {"name": name, "distribution": dist, "version": version}
                for name, (dist, version) in sorted(run.plugins.sources.items())
            ],
            "hashes": hashes,
            "store": str(run.store.root),
        },
    )
    return AuditReport.from_json(secrets.redact_all(report.to_json()))
