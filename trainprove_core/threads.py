"""One threads policy for every torch and onnxruntime phase: as many threads as the cores the machine's
load leaves idle (at least one), unless the user fixes the count.

On a loaded machine torch's default (one thread per core) makes its threads wait on each other: on 2
cores at a load of 8-14, a forward pass, training and generation were 2 to 20 times slower with two
threads than with one (docs/performance.md, `bench/threads.py`). So each phase asks `count(requested)`
when it starts: `requested` if it is above 0 (a plugin's `threads` key), else `$TRAINPROVE_THREADS` if
set above 0, else the idle cores (`idle_cores`: the core count less the 1-minute load average or the tasks
running now, whichever is more, rounded; this process's own share of the load average is not counted as
busy, or a long run on a quiet machine would see its own past work as another's and shrink to one thread).
`torch_threads` sets torch's intra-op threads to that inside a block and puts the old count back;
`onnx_threads` gives the count for an onnxruntime session's `intra_op_num_threads`.

Each phase's count is noted (`used`), and the audit's accounting reports it (`report.json`'s `counts`,
`threads_<phase>`). A trainer whose weights depend on the thread count (the timm trainer's `threads`, part
of its identity) passes its own fixed count: the policy never changes what is stored.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import InputError

ENV = "TRAINPROVE_THREADS"
PHASES = ("generation", "training", "inference")
"""The phases whose threads the accounting reports."""

_lock = threading.Lock()
_used: dict[str, int] = {}


def own_cpu() -> float:
    """CPU seconds of this process and its child processes (the `processes` executor's workers): those
    that ended and were waited for (`os.times`), and, on Linux, those still running (`/proc`)."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system + _running_children_cpu()


def _running_children_cpu() -> float:
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    pids = set()
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as f:
                pids.update(f.read().split())
        except OSError:
            continue
    total = 0
    for pid in pids:
        fields = _stat_fields(f"/proc/{pid}/stat")
        try:
            total += int(fields[11]) + int(fields[12])  # utime, stime (the 14th and 15th fields)
        except (IndexError, ValueError):
            continue
    return total / _CLOCK_TICKS


def _stat_fields(path: str) -> list[str]:
    """The fields of a `/proc/.../stat` file after the command's name (the 3rd field on); [] where it
    cannot be read (a process or thread that just ended)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_cpu_samples: list[tuple[float, float]] = [(time.monotonic(), own_cpu())]  # (wall, CPU) of this process


def idle_cores() -> int:
    """The cores the machine's load leaves idle: the core count less what is busy, rounded, at least 1 and
    at most the core count. Busy: the 1-minute load average less this process's share, or, where more,
    the tasks running right now but this process's own threads (`/proc/loadavg`), so a load that started
    seconds ago counts at once."""
    cores = usable_cores()
    try:
        busy = max(0.0, os.getloadavg()[0] - own_load())
    except OSError:  # no load average (Windows): every core
        busy = 0.0
    others_now = max(0, running_now() - own_running())
    return max(1, min(cores, int(cores - max(busy, others_now) + 0.5)))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one: a container's or a
    `taskset`'s share, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def own_load() -> float:
    """This process's share of the 1-minute load average: its CPU seconds per second over the last minute
    (or since it started), its worker processes' included. The load average counts this process too;
    without this, a run that kept one core busy for a minute read a quiet 2-core machine as half busy and
    drew its images on one thread (and, once its workers had trained on both cores, on one thread too)."""
    now, cpu = time.monotonic(), own_cpu()
    with _lock:
        if now - _cpu_samples[-1][0] >= 1.0:  # a sample a second at most: a minute is about 60
            _cpu_samples.append((now, cpu))
        while len(_cpu_samples) > 2 and now - _cpu_samples[1][0] >= 60.0:
            _cpu_samples.pop(0)  # keep the newest sample at least a minute old, and every later one
        then, cpu_then = _cpu_samples[0]
    return (cpu - cpu_then) / (now - then) if now - then >= 1.0 else 0.0


def own_running() -> int:
    """This process's threads running or runnable at this instant, the caller included (`/proc/self/task`;
    1 where there is none). torch's worker threads spin for a while after a parallel operation: counted as
    another's tasks, they made the next phase see a busy machine and take one thread on a quiet one."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    running = sum(_stat_fields(f"/proc/self/task/{task}/stat")[:1] == ["R"] for task in tasks)
    return max(1, running)


def running_now() -> int:
    """Tasks running or runnable at this instant (the 4th field of `/proc/loadavg`; 0 where there is none)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0


def fixed() -> int | None:
    """The count `$TRAINPROVE_THREADS` fixes for every phase, or None (unset, empty or 0: the policy);
    `InputError` for a value that is no count (checked when a workspace opens, before any work)."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        raise InputError(
            f"${ENV}={text!r}: not a number of threads (a whole number, 0 for the policy)"
        ) from None
    if n < 0:
        raise InputError(f"${ENV}={text!r}: a number of threads is 0 (the policy) or more")
    return n or None


def count(requested: int = 0, phase: str | None = None) -> int:
    """The threads a phase runs on: `requested` if above 0, else `$TRAINPROVE_THREADS` if set, else the
    idle cores. Noted under `phase` for the accounting."""
    n = requested if requested > 0 else (fixed() or idle_cores())
    if phase is not None:
        with _lock:
            _used[phase] = n
    return n


def used() -> dict[str, int]:
    """The threads each phase last ran on in this process (`threads_<phase>` of the accounting)."""
    with _lock:
        return dict(_used)


def forget() -> None:
    """Start a new account (an audit's accounting begins with none noted)."""
    with _lock:
        _used.clear()


@contextmanager
def torch_threads(requested: int = 0, phase: str | None = None) -> Iterator[int]:
    """torch's intra-op threads set to `count(requested, phase)` inside the block (yielded), and put
    back after it."""
    import torch

    n = count(requested, phase)
    previous = torch.get_num_threads()
    if n == previous:
        yield n
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


def onnx_threads(requested: int = 0, phase: str | None = "inference") -> int:
    """`intra_op_num_threads` for an onnxruntime session (and `inter_op_num_threads` 1): the policy's
    count, taken when the session is built."""
    return count(requested, phase)
