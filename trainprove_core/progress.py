"""Progress of long work, readable on a terminal and in a log.

A command declares its *plan* (how many steps: image sets, models, suspects' answers) with `plan()`; each
piece of work is a `step()`. On a terminal (stderr a tty) a step is a tqdm bar titled `[k/N] what`, with
the whole run's elapsed time and an estimate of what is left; the bar is refreshed every second, so it
moves while a long chunk runs. Off a terminal (CI, `make`, a log file) a line with the same information is
written every `TRAINPROVE_PROGRESS_INTERVAL` seconds (default 30) and when a step that did work ends.
`--no-progress` or `TRAINPROVE_PROGRESS=0` turns both off.

The whole plan is known before its first step, so the estimate does not jump: work found along the way (a
decision test's reference models and their answer sets) calls `add(n)`, and a plan declared with
`reserved=k` counts k such steps from the start (a decision test's `progress_steps`, which the audit asks
before it begins): `add` takes from them before it grows the plan.

Steps differ in cost by a hundredfold (training a model, or one of ten answer sets asked in one batch), so
the estimate of what is left counts them by *kind* (a step's first word: generate, train, query): a plan
may say how its steps split by kind (`kinds`), and each kind's cost per step is measured as its steps end
(skipped ones, which the store had or a batch covered, at no cost; the first step that did work left out,
since it pays the kind's imports and model loading). Until every kind with steps left is measured, the
estimate says so instead of guessing.

A plugin whose work takes long inside one step (a trainer's epochs) reports within it through
`current()`: `bar = current(); bar.set_total(epochs, "epoch"); ...; bar.update(1)`. Outside a step,
`current()` is a silent stand-in, so plugins never need to check.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import secrets

INTERVAL_ENV = "TRAINPROVE_PROGRESS_INTERVAL"


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Bar:
    """The progress of the step running now: `update(n)` as work is done, `set_total(n, unit)` when a
    plugin measures its work in other units (epochs) than the core (images)."""

    def __init__(self, plan: _Plan | None, index: int, desc: str, total: int | None, unit: str) -> None:
        self.plan, self.index, self.desc = plan, index, desc
        self.total, self.unit, self.done = total, unit, 0
        self.started = time.time()
        self._tqdm: Any = None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)

    def set_total(self, total: int, unit: str | None = None) -> None:
        self.total, self.done = total, 0
        if unit:
            self.unit = unit
        if self._tqdm is not None:
            self._tqdm.reset(total=total)
            if unit:
                self._tqdm.unit = unit

    def set_postfix_str(self, s: str) -> None:  # tqdm's name, kept for plugins that used it
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(secrets.redact(s))

    def line(self) -> str:
        """`[k/N] what: done/total unit (rate, ETA); run elapsed, ~left` for logs."""
        elapsed = time.time() - self.started
        head = f"[{self.index}/{self.plan.total}] " if self.plan is not None else ""
        text = f"{head}{self.desc}: {self.done}"
        if self.total:
            text += f"/{self.total}"
        text += f" {self.unit}"
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            text += f" ({rate:.3g} {self.unit}/s"
            if self.total:
                text += f", step ETA {_fmt((self.total - self.done) / rate)}"
            text += ")"
        if self.plan is not None:
            text += f"; {self.plan.summary()}"
        return text


class _Silent(Bar):
    def __init__(self) -> None:
        super().__init__(None, 0, "", None, "it")


OTHER = "other"
"""The kind of the steps a plan did not say the kind of."""


def kind_of(desc: str) -> str:
    """A step's kind: the first word of its description ("generate", "train", "query")."""
    return desc.split(maxsplit=1)[0].lower() if desc.strip() else OTHER


@dataclass
class _Plan:
    total: int
    title: str
    enabled: bool
    started: float = field(default_factory=time.time)
    index: int = 0
    reserved: int = 0  # steps counted in `total` for `add` calls to come
    kinds: dict[str, int] = field(default_factory=dict)  # declared steps per kind (the rest: OTHER)
    ended_steps: dict[str, list[float | None]] = field(default_factory=dict)  # seconds (None: skipped)

    def declare(self, kinds: dict[str, int] | None) -> None:
        for kind, n in (kinds or {}).items():
            if kind != OTHER:  # the steps of no declared kind are the rest of the total
                self.kinds[kind] = self.kinds.get(kind, 0) + max(0, int(n))

    def ended(self, kind: str, seconds: float | None) -> None:
        """A step of `kind` ended after `seconds` of work (None: skipped, the store had it or a batch
        covered it)."""
        self.ended_steps.setdefault(kind if kind in self.kinds else OTHER, []).append(seconds)

    def cost(self, kind: str) -> float | None:
        """The measured seconds per step of `kind`, skipped steps included at no cost; the first step that
        did work is left out once there is another (it pays the kind's imports and model loading once).
        None until a step of this kind did work."""
        steps = self.ended_steps.get(kind, [])
        worked = [i for i, s in enumerate(steps) if s is not None]
        if not worked:
            return None
        if len(worked) > 1:
            steps = steps[: worked[0]] + steps[worked[0] + 1 :]
        return sum(s or 0.0 for s in steps) / len(steps)

    def left(self) -> float | None:
        """Seconds left: per kind, its steps left times its measured cost per step. None (not known yet)
        while a kind with steps left has not been measured on two steps that did work, or on one and
        skipped ones (a first step alone is mostly one-off costs: an estimate from it said 10 minutes
        for a run that had 2 left)."""
        declared = {**self.kinds, OTHER: max(0, self.total - sum(self.kinds.values()))}
        seconds = 0.0
        for kind, n in declared.items():
            steps = self.ended_steps.get(kind, [])
            left = max(0, n - len(steps))
            if not left:
                continue
            cost = self.cost(kind)
            if cost is None or len(steps) < 2:
                return None
            seconds += left * cost
        return seconds

    def summary(self) -> str:
        elapsed = time.time() - self.started
        text = f"{self.title} {_fmt(elapsed)} elapsed"
        if self.index < self.total:
            left = self.left()
            text += f", ~{_fmt(left)} left" if left is not None else ", estimating what is left"
        return text


_state = threading.local()


def _enabled(flag: bool) -> bool:
    return flag and os.environ.get("TRAINPROVE_PROGRESS") != "0"


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _interval() -> float:
    try:
        return max(0.5, float(os.environ.get(INTERVAL_ENV, "30")))
    except ValueError:
        return 30.0


@contextmanager
def plan(
    steps: int, title: str, enabled: bool = True, reserved: int = 0, kinds: dict[str, int] | None = None
) -> Iterator[None]:
    """Declare that the work inside has `steps` steps, of which `reserved` will be announced by `add`
    (counted now, so the total does not change when they are), and how many of them are of each kind
    (`kinds`, e.g. {"train": 29, "query": 170}; the rest are priced together). A plan inside another adds
    its steps to the outer one (the demo declares its pool; each audit it runs adds its own)."""
    outer: _Plan | None = getattr(_state, "plan", None)
    if outer is not None:
        outer.total += max(0, steps)
        outer.reserved += max(0, reserved)
        outer.declare(kinds)
        yield
        return
    _state.plan = _Plan(max(1, steps), title, _enabled(enabled), reserved=max(0, reserved))
    _state.plan.declare(kinds)
    try:
        yield
    finally:
        _state.plan = None


def current() -> Bar:
    """The bar of the step running now in this thread (a silent one outside any step)."""
    return getattr(_state, "bar", None) or _Silent()


@contextmanager
def step(desc: str, total: int | None = None, unit: str = "it", enabled: bool = True) -> Iterator[Bar]:
    """One step of the plan, of the kind its description's first word names. Enter it only when there is
    work to do; `skip()` counts a step that the store already had."""
    the_plan: _Plan | None = getattr(_state, "plan", None)
    if the_plan is not None:
        the_plan.index = min(the_plan.total, the_plan.index + 1)
        enabled = enabled and the_plan.enabled
    bar = Bar(the_plan, the_plan.index if the_plan else 0, desc, total, unit)
    previous = getattr(_state, "bar", None)
    _state.bar = bar
    stop = threading.Event()
    ticker = None
    if _enabled(enabled):
        if _on_terminal():
            from tqdm.auto import tqdm

            prefix = f"[{bar.index}/{the_plan.total}] " if the_plan else ""
            bar._tqdm = tqdm(
                total=total, desc=secrets.redact(prefix + desc), unit=unit, leave=False, dynamic_ncols=True
            )

            def tick() -> None:  # keep elapsed time and the run's estimate moving within long chunks
                while not stop.wait(1.0):
                    if the_plan is not None:
                        bar._tqdm.set_postfix_str(the_plan.summary(), refresh=False)
                    bar._tqdm.refresh()
        else:
            interval = _interval()

            def tick() -> None:
                while not stop.wait(interval):
                    print(secrets.redact(bar.line()), file=sys.stderr, flush=True)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    try:
        yield bar
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(timeout=2)
        if bar._tqdm is not None:
            bar._tqdm.close()
        seconds = time.time() - bar.started
        if the_plan is not None:
            the_plan.ended(kind_of(desc), seconds)
        if _enabled(enabled) and not _on_terminal() and seconds >= 1:
            print(secrets.redact(f"{bar.line()}; step took {_fmt(seconds)}"), file=sys.stderr, flush=True)
        _state.bar = previous


def add(steps: int, kind: str = OTHER) -> None:
    """Announce `steps` found along the way (a decision test that builds reference models): taken from
    the steps the plan reserved for them, and the plan grows only by what those do not cover (as steps of
    `kind`)."""
    the_plan: _Plan | None = getattr(_state, "plan", None)
    if the_plan is not None:
        taken = min(the_plan.reserved, max(0, steps))
        the_plan.reserved -= taken
        grown = max(0, steps) - taken
        the_plan.total += grown
        if grown and kind != OTHER:
            the_plan.declare({kind: grown})


def skip(kind: str = OTHER) -> None:
    """Count a step of the plan (of `kind`) whose result the store already had, or that a batch covered."""
    the_plan: _Plan | None = getattr(_state, "plan", None)
    if the_plan is not None:
        the_plan.index = min(the_plan.total, the_plan.index + 1)
        the_plan.ended(kind, None)
