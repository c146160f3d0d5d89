"""One threads policy for every torch phase (trainprove_core.threads): the cores the load leaves idle
unless the user fixes the count; a bad $TRAINPROVE_THREADS is one clear line; a block puts torch's own
count back; the audit's accounting says what each phase ran on."""

from __future__ import annotations

import os

import pytest
import torch

from trainprove_core import threads
from trainprove_core.errors import InputError


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_the_policy_is_the_idle_cores_unless_fixed(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "own_load", lambda: 0.0)
    monkeypatch.setattr(threads, "own_running", lambda: 1)
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(threads, "running_now", lambda: 1)  # this process alone
    assert threads.count() == cores  # quiet: every core
    # right after a parallel torch operation its own worker threads still spin: not another's load
    monkeypatch.setattr(threads, "running_now", lambda: 3)
    monkeypatch.setattr(threads, "own_running", lambda: 3)
    assert threads.count() == cores
    monkeypatch.setattr(threads, "own_running", lambda: 1)
    monkeypatch.setattr(threads, "running_now", lambda: cores + 3)  # a load that started a moment ago
    assert threads.count() == 1
    monkeypatch.setattr(threads, "running_now", lambda: 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 5.0, 0.0, 0.0))
    assert threads.count() == 1  # busy: at least one
    assert threads.count(3) == 3  # a plugin's `threads` key fixes it
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.count() == 2 and threads.count(5) == 5  # the user's variable; a table's key wins
    monkeypatch.setenv(threads.ENV, "0")
    assert threads.count() == 1  # 0: the policy (still busy)


def test_this_process_own_load_is_not_counted_as_busy(monkeypatch):
    """A run that kept one core busy for the last minute makes the 1-minute load average 1 on a quiet
    machine: that is itself, not another's load, so it still gets every core."""
    monkeypatch.delenv(threads.ENV, raising=False)
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "running_now", lambda: 1)
    monkeypatch.setattr(threads, "own_running", lambda: 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    monkeypatch.setattr(threads, "own_load", lambda: 1.0)  # its own past minute
    assert threads.count() == cores
    monkeypatch.setattr(threads, "own_load", lambda: 0.0)  # the same load is another process's
    assert threads.count() == max(1, cores - 1)


def test_own_load_is_this_process_cpu_seconds_per_second(monkeypatch):
    clock = {"wall": 1000.0, "cpu": 50.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(threads, "own_cpu", lambda: clock["cpu"])
    monkeypatch.setattr(threads, "_cpu_samples", [(1000.0, 50.0)])
    assert threads.own_load() == 0.0  # no time has passed
    for _ in range(90):  # 90 s, half a core busy
        clock["wall"] += 1.0
        clock["cpu"] += 0.5
        assert threads.own_load() == pytest.approx(0.5)
    assert len(threads._cpu_samples) <= 62  # about a minute of samples kept


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="running children are read from /proc")
def test_a_running_child_process_cpu_is_this_process_own():
    """A worker process's CPU is this process's own load, while it runs and once it is waited for."""
    import subprocess
    import sys

    before = threads.own_cpu()
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    busy += "print(1, flush=True)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", busy], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # it has spent 0.6 s of CPU and sleeps
        assert threads.own_cpu() - before >= 0.5
    finally:
        child.kill()
        child.wait()
    assert threads.own_cpu() - before >= 0.5


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="threads are read from /proc")
def test_own_running_counts_this_process_busy_threads():
    """Threads of this process that compute outside the GIL (as torch's workers do) are its own running
    threads: with two hashing, it counts more than the caller alone."""
    import hashlib
    import threading

    stop = threading.Event()
    data = bytes(8 << 20)

    def hash_until_stopped():
        while not stop.is_set():
            hashlib.sha256(data).digest()  # releases the GIL for large buffers

    workers = [threading.Thread(target=hash_until_stopped) for _ in range(2)]
    for t in workers:
        t.start()
    try:
        seen = max(threads.own_running() for _ in range(500))
    finally:
        stop.set()
        for t in workers:
            t.join()
    assert seen >= 2


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_a_bad_thread_count_is_one_clear_line(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(InputError, match=rf"^\$TRAINPROVE_THREADS='{value}': "):
        threads.fixed()


def test_a_block_puts_torchs_count_back_and_is_noted(monkeypatch):
    monkeypatch.setenv(threads.ENV, "2")
    threads.forget()
    with threads.torch_threads(0, "generation") as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    assert threads.used() == {"generation": 2}
