"""Running work: `execute` (what every executor runs on its workers) and the built-in executors, `local`
(in this process, one item at a time) and `processes` (worker processes of this machine), registered
through the core's own entry point like any plugin.

The core cuts everything expensive into `Work` items (an image-set chunk, a training, a query chunk), each
naming the model it needs as a `ModelRef`; an executor runs them wherever it likes and hands back each
`Outcome`. On a worker, `execute` builds a model once per worker (`ModelCache`, keyed by the model's
identity) and reuses it for every later item; in the driver's process it uses the driver's own model.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .hookspecs import hookimpl
from .records import Closable, ExecutorSpec, Outcome, Work


class ModelCache:
    """The models one worker has built, by `ModelRef.key` (thread-safe: one build per key). With a
    `capacity`, the least recently used model is dropped (and closed) when another is built."""

    def __init__(self, capacity: int | None = None) -> None:
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def get(self, work: Work) -> tuple[Any, bool]:
        """The model `work` needs, and whether it was built now."""
        if work.in_driver and work.local is not None:
            return work.local, False
        key = work.model.key
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key], False
            model = self._models[key] = work.model.build()
            while self.capacity is not None and len(self._models) > self.capacity:
                _close(self._models.popitem(last=False)[1])
            return model, True

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)


def _close(model: Any) -> None:
    if isinstance(model, Closable):
        model.close()


_worker_models = ModelCache(capacity=4)  # a worker process of a task-based executor keeps its last four


def resize_to_task(images: Any, size: int) -> Any:
    """Bilinear resize (as the paper) of uint8 RGB images to size x size (numpy and PIL: loaded on first
    use, not by `trainprove --help`)."""
    import numpy as np
    from PIL import Image

    from .errors import InputError

    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(
            f"a generator returned images of shape {images.shape} and dtype {images.dtype}; "
            "expected uint8 RGB of shape (N, H, W, 3)"
        )
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return out


def execute(work: Work, models: ModelCache | None = None) -> Outcome:
    """Run one work item in this process and say what it cost. `models` defaults to this process's
    cache, so a worker builds each model once. Raises what the model raised."""
    from .errors import InputError

    model, built = (models or _worker_models).get(work)
    started = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if work.kind == "generate":
        import numpy as np

        requests, image_size = work.inputs
        images = resize_to_task(np.asarray(model.generate(requests)), image_size)
        if len(images) != len(requests):
            raise InputError(f"generator returned {len(images)} images for {len(requests)} requests")
        labels = np.array([r.class_index for r in requests], dtype=np.int64)
        value: Any = {"images": images, "labels": labels}
        return Outcome(value, len(images), 0, time.perf_counter() - started, worker, built)
    if work.kind == "query":
        answers = model.predict(work.inputs)
        return Outcome(answers, 0, work.size, time.perf_counter() - started, worker, built)
    if work.kind == "train":
        images, labels, task, out_dir, *rest = work.inputs
        if work.in_driver:  # with the store's checkpoint folder, to resume from, where there is one
            more = {"checkpoint_dir": Path(rest[0])} if rest and rest[0] is not None else {}
            model.train(images, labels, task, Path(out_dir), **more)
            return Outcome(None, 0, 0, time.perf_counter() - started, worker, built)
        scratch = Path(tempfile.mkdtemp(prefix="trainprove-train-"))
        try:
            model.train(images, labels, task, scratch)
            files = {
                str(p.relative_to(scratch)): p.read_bytes() for p in sorted(scratch.rglob("*")) if p.is_file()
            }
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return Outcome(files, 0, 0, time.perf_counter() - started, worker, built)
    raise ValueError(f"unknown kind of work {work.kind!r}")


def write_files(files: Mapping[str, bytes] | None, out_dir: Path) -> None:
    """Write a remote training's files (`Outcome.value` of a "train" item) into `out_dir`."""
    for rel, data in (files or {}).items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class LocalExecutor:
    """Runs work one item after another in this process, with the driver's own models (the default:
    nothing is pickled or copied)."""

    parallel = False

    def run(self, works: Sequence[Work]) -> Iterator[tuple[Work, Outcome]]:
        for work in works:
            yield work, execute(work)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Runs the work of `kinds` in `workers` processes of this machine, started on the first item and kept
    until the audit ends, and every other kind in the driver, as `local` does. By default trainings and
    image generation go to workers, queries stay in the driver. A trainer runs on a fixed thread count
    (the timm trainer's one, part of its identity), so independent trainings (a fleet's suspects, the
    calibrated rule's reference models) are what a machine's other cores can take; a second thread helps
    the embedded generators' small networks less than a second process does (docs/scale.md), so an image
    set's chunks drawn at once, one thread each, go faster. Queries gained nothing on workers (a copy of
    every suspect per worker). Each worker builds a model once (`execute`, `ModelCache`) and imports torch
    once. Trainings send their files back and the driver stores them, as on Ray. Everything is seeded and
    a trainer's threads are part of its identity, so the models, images and answers are the ones `local`
    makes: the store does not know which executor made them.

    Ctrl-C and SIGTERM are the driver's: the workers ignore both, and the driver's SIGINT (a terminal sends
    it to the whole process group) or SIGTERM kills them at once, so the audit ends with what the store
    holds instead of waiting for every training already handed out."""

    def __init__(self, workers: int, kinds: Sequence[str] = ("generate", "train")) -> None:
        from .threads import usable_cores

        self.workers = workers or usable_cores()
        self.parallel = frozenset(kinds)  # the kinds that run at once, on workers
        self._pool: Any = None
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}  # the SIGINT and SIGTERM handlers wrapped while workers run
        self._stopped = threading.Event()  # Ctrl-C: every `run` ends at once

    def _started(self) -> Any:
        with self._lock:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                # spawn, not fork: the driver may hold threads (progress, other suspects) and torch state
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_stops)
                self._watch_stops()
            return self._pool

    def _watch_stops(self) -> None:
        """On SIGINT or SIGTERM, stop the workers first, then do what the driver did before."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            return  # the engine starts work from its threads too; the first item normally comes from main

        def stopper(previous: Any) -> Any:
            def stop(signum: int, frame: Any) -> None:
                if previous == signal.SIG_IGN:
                    return
                self._terminate()
                if callable(previous):
                    previous(signum, frame)
                elif signum == signal.SIGINT:
                    raise KeyboardInterrupt
                else:  # SIGTERM's default: end this process as the signal would have
                    signal.signal(signum, signal.SIG_DFL)
                    os.kill(os.getpid(), signum)

            return stop

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            self._previous[signum] = previous
            signal.signal(signum, stopper(previous))

    def _terminate(self) -> None:
        """Stop the workers now, and every `run` with them (each raises KeyboardInterrupt in its thread).
        The workers ignore SIGINT and SIGTERM (the driver's to handle), so they are killed."""
        self._stopped.set()
        pool = self._pool
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()

    def run(self, works: Sequence[Work]) -> Iterator[tuple[Work, Outcome]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        import cloudpickle  # a plugin's factory may be a closure or a lambda (as Ray, which uses it too)

        here = [work for work in works if work.kind not in self.parallel]
        there = [work for work in works if work.kind in self.parallel]
        futures: dict[Any, Work] = {}
        if there:  # the workers start on the first item that is theirs
            pool = self._started()
            futures = {pool.submit(_execute_pickled, cloudpickle.dumps(work)): work for work in there}
        pending = set(futures)
        try:
            for work in here:  # in the driver while the workers run theirs
                yield work, execute(work)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                if self._stopped.is_set():
                    raise KeyboardInterrupt  # Ctrl-C stopped the workers: no result is coming
                for future in done:
                    yield futures[future], future.result()  # a work's own error, raised as itself
        finally:
            for future in futures:  # an error or Ctrl-C on the driver: drop what is still queued
                future.cancel()

    def close(self) -> None:
        import signal

        with self._lock:
            pool, self._pool = self._pool, None
            previous, self._previous = self._previous, {}
        if previous and threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _ignore_stops() -> None:
    """A worker's initializer: Ctrl-C and SIGTERM are the driver's to handle (it stops the workers itself;
    a worker whose driver died ends when its queue closes)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _execute_pickled(work: bytes) -> Outcome:
    """`execute` on a worker process, for a `Work` pickled by cloudpickle."""
    import pickle

    return execute(pickle.loads(work))


def _local(settings: Mapping[str, Any]) -> LocalExecutor:
    return LocalExecutor()


def _processes(settings: Mapping[str, Any]) -> ProcessExecutor:
    return ProcessExecutor(int(settings["workers"]), tuple(settings["kinds"]))


def _work_kinds(value: list[str], settings: Mapping[str, Any]) -> None:
    from .records import WORK_KINDS

    if not value or any(k not in WORK_KINDS for k in value):
        raise ValueError(f"must be one or more of {', '.join(WORK_KINDS)}, got {value}")


@hookimpl
def trainprove_executors() -> list[ExecutorSpec]:
    from .records import Option

    return [
        ExecutorSpec("local", _local, "run generation, training and queries in this process, one at a time"),
        ExecutorSpec(
            "processes",
            _processes,
            "run image generation and trainings (or every kind of work) in worker processes of this "
            "machine, at once",
            (
                Option("workers", "int", 0, min=0, max=256, help="worker processes (0: one per CPU core)"),
                Option(
                    "kinds",
                    "list[str]",
                    ["generate", "train"],
                    help="the kinds of work the workers run (generate, train, query); the rest runs in the "
                    "driver on the idle cores, as local. Default: image sets and trainings (a large "
                    'generator on the CPU may do better in the driver on every core: ["train"])',
                    check=_work_kinds,
                ),
            ),
        ),
    ]
