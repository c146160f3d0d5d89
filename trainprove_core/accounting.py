"""Where an audit's time goes, and how much of its work was done now rather than taken from the store.

`Accounts.phase(name)` times a block; phases nest, and time is charged to the innermost one (a decision
test that trains reference models charges `training`, not `decisions`, for it), so the phases add up to
the wall time. What is not inside any phase is `other` (start-up, reading the audit file, plugins).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

PHASES = (
    ("checking", "building and checking"),
    ("generation", "generation"),
    ("training", "training"),
    ("model_loading", "model loading"),
    ("queries", "queries"),
    ("decisions", "decisions"),
    ("report", "report"),
    ("other", "other"),
)
"""The phases of `report.json`'s `timings` (seconds), in the order of an audit, with their labels."""

COUNTS = (
    ("images_made", "images made"),
    ("images_cached", "images cached"),
    ("models_trained", "models trained"),
    ("models_cached", "models cached"),
    ("models_loaded", "models loaded"),
    ("queries_sent", "queries sent"),
    ("answers_cached", "answers cached"),
    ("verdicts_made", "verdicts made"),
    ("verdicts_reused", "verdicts reused"),
    ("threads_generation", "threads generating"),
    ("threads_training", "threads training"),
    ("threads_inference", "threads answering"),
)
"""The counts of `report.json`'s `counts`, with their labels. `threads_<phase>`: the CPU threads torch (or
onnxruntime) ran that phase on in this audit (`trainprove_core.threads`; 0: the phase did not run here)."""

F = TypeVar("F", bound=Callable[..., Any])


class Accounts:
    """Seconds per phase and counts of work, for one audit (or one workspace)."""

    def __init__(self) -> None:
        self.start = self._since = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {key: 0 for key, _ in COUNTS}
        self._stack: list[str] = []

    def _charge(self) -> None:
        now = time.perf_counter()
        name = self._stack[-1] if self._stack else "other"
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._since
        self._since = now

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the time inside the block to `name` (less what inner phases take)."""
        self._charge()
        self._stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def note_threads(self) -> None:
        """Record the threads each phase last ran on (`trainprove_core.threads.used`) in `counts`."""
        from . import threads

        for name, n in threads.used().items():
            self.counts[f"threads_{name}"] = n

    def total(self) -> float:
        return time.perf_counter() - self.start

    def timings(self) -> dict[str, float]:
        """Seconds per phase so far (milliseconds), every phase listed."""
        self._charge()
        return {key: round(self.seconds.get(key, 0.0), 3) for key, _ in PHASES}


def phase(name: str) -> Callable[[F], F]:
    """A method decorator: the call is charged to phase `name` of `self.accounts`."""

    def decorate(method: F) -> F:
        @wraps(method)
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self.accounts.phase(name):
                return method(self, *args, **kwargs)

        return timed  # type: ignore[return-value]

    return decorate


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_line(report: dict[str, Any]) -> str:
    """One line for the console: the verdicts, the wall time, where it went and the work done."""
    timings = report.get("timings") or {}
    counts = report.get("counts") or {}
    verdicts = report.get("verdicts") or []
    decided = {}
    for v in verdicts:
        decided[v.get("decision")] = decided.get(v.get("decision"), 0) + 1
    wall = report.get("wall_seconds") or 0.0
    spent = sorted(
        ((k, v) for k, v in timings.items() if isinstance(v, (int, float)) and v >= 0.05),
        key=lambda kv: -kv[1],
    )
    labels = dict(PHASES)
    parts = [
        f"audit: {_n(len(report.get('suspects') or []), 'suspect')}, {_n(len(verdicts), 'verdict')} "
        f"({decided.get('trained-on-generator', 0)} trained, {decided.get('not-trained-on-generator', 0)} "
        f"not trained, {decided.get('inconclusive', 0)} inconclusive) in {wall:.1f} s",
        ", ".join(f"{labels.get(k, k)} {v:.1f} s" for k, v in spent[:4]),
        f"images {counts.get('images_made', 0)} made / {counts.get('images_cached', 0)} cached, models "
        f"{counts.get('models_trained', 0)} trained / {counts.get('models_cached', 0)} cached / "
        f"{counts.get('models_loaded', 0)} loaded, queries {counts.get('queries_sent', 0)} sent / "
        f"{counts.get('answers_cached', 0)} cached, verdicts {counts.get('verdicts_made', 0)} made / "
        f"{counts.get('verdicts_reused', 0)} reused",
    ]
    return " · ".join(p for p in parts if p)
