"""The `ray` executor: trainprove's work items on a Ray cluster.

    driver (the audit)                                   Ray cluster
    Workspace ── Work items ──▶ RayExecutor.run ──▶ generation: one pool of actors per generator
       ▲                                               (ModelRef.key), `workers` each, every actor
       │                                               builds (and compiles) its generator once;
       │                                               a remote suspect: one threaded actor
       │                                               (max_concurrent_remote chunks in flight);
       └── store: each Outcome written as it arrives ◀─ trainings, queries of local models: Ray tasks
                                                         on worker processes Ray reuses, each keeping
                                                         its last few models built

Everything a worker computes comes back to the driver, which writes it to its store: the store stays the
only judge of what is done, so a run resumes whichever executor made what, and the store needs no shared
storage: queries of a model the audit trained (the shadow, the controls, reference models) get its
folder from the driver's store through Ray's object store, copied once per worker process
(`shared_store = true` skips the copy where every node mounts the store at the same path).

A worker that dies (kill -9, a lost node) costs only the chunks it held: an actor restarts, builds its
model again and runs them again, a task runs again (`max_retries`); an error the work itself raised is
never retried.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import count
from pathlib import Path
from typing import Any

from trainprove_core import InputError, Outcome, TrainproveError, Work

_remote_classes: dict[str, Any] = {}


_copies: dict[str, str] = {}


def _local_copy(key: str, files: Mapping[str, bytes]) -> str:
    """Where this worker process keeps its copy of a trained model's folder (written once per key)."""
    if key not in _copies:
        import tempfile

        from trainprove_core import write_files

        folder = tempfile.mkdtemp(prefix="trainprove-model-")
        write_files(files, Path(folder))
        _copies[key] = folder
    return _copies[key]


def _remotes() -> tuple[Any, Any]:
    """The actor class (generators, remote suspects) and the task (trainings, queries of local
    models), defined once per process (after `import ray`)."""
    if not _remote_classes:
        import ray

        @ray.remote(concurrency_groups={"info": 1})  # `pid` answers while a chunk runs
        class TrainproveWorker:
            """Builds each model it is sent once (per `ModelRef.key`) and runs work items with it."""

            def __init__(self) -> None:
                from trainprove_core import ModelCache

                self.models = ModelCache()

            def run(self, work: Work) -> Outcome:
                from trainprove_core import execute

                return execute(work, self.models)

            @ray.method(concurrency_group="info")
            def pid(self) -> int:
                return os.getpid()

        @ray.remote(max_calls=0)  # a worker process stays for the next item (0: no limit)
        def run_task(work: Work, files: Mapping[str, bytes] | None) -> Outcome:
            from trainprove_core import execute

            if files is not None:  # a trained model's folder, copied from the driver's store
                work.model = dataclasses.replace(work.model, model_dir=_local_copy(work.model.key, files))
            return execute(work)  # this process's models: its last few stay built

        _remote_classes.update(worker=TrainproveWorker, task=run_task)
    return _remote_classes["worker"], _remote_classes["task"]


KIND_NAME = {"generate": "generation", "query": "query", "train": "training"}


class _Pool:
    """The actors of one model: `need` is (CPUs, GPUs) per actor, `users` the runs using it now."""

    def __init__(self, actors: list[Any], need: tuple[float, float]) -> None:
        self.actors, self.need, self.users, self.turn = actors, need, 0, count()
        self.last_used = time.monotonic()


class RayExecutor:
    """Runs work items on Ray (see the module docstring). Connects on the first item, so an audit the
    store already holds starts nothing; `close()` kills its actors and stops a cluster it started.

    Actors hold their CPUs and GPUs while they live, so the driver keeps the books: a generator's pool
    gets as many of its `workers` as fit beside what is in use, an idle pool (its model not in use by any
    run) is killed, least recently used first, when another pool or a task needs its resources, and a
    run waits while every resource is in use by others. A pool stays alive between runs while nothing
    else needs its room, so the validation set is made by the workers that made the shadow set. Tasks
    (trainings, queries of local models) hold theirs only while they run.
    """

    parallel = True

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self._cond = threading.Condition()
        self._connected = False
        self._owns_cluster = False
        self._pools: dict[tuple[str, str, bool], _Pool] = {}
        self._free: dict[str, float] = {}
        self._total: dict[str, float] = {}
        self._files: dict[str, Any] = {}  # trained models' folders in Ray's object store, by model key
        self.cold_pools = 0  # pools created (each of its actors builds the model once)

    # ---- the cluster ------------------------------------------------------------------------------------

    def _connect(self) -> None:
        with self._cond:
            if self._connected:
                return
            import ray

            if not ray.is_initialized():
                address = self.settings.get("address")
                kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
                if address:
                    kwargs["address"] = address
                else:
                    kwargs.update(
                        num_cpus=self.settings.get("num_cpus"), num_gpus=self.settings.get("num_gpus")
                    )
                try:
                    ray.init(**kwargs)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    where = address or "(a local one)"
                    raise InputError(
                        f"[executor] ray: cannot start or reach the cluster {where}: {exc}"
                    ) from None
                self._owns_cluster = True
            have = ray.cluster_resources()
            self._total = {"CPU": float(have.get("CPU", 0)), "GPU": float(have.get("GPU", 0))}
            self._free = dict(self._total)
            self._connected = True

    def _need(self, work: Work) -> tuple[float, float]:
        kind = KIND_NAME[work.kind]
        cpus, gpus = float(self.settings[f"cpus_per_{kind}"]), float(self.settings[f"gpus_per_{kind}"])
        total = self._total
        for name, need in (("CPU", cpus), ("GPU", gpus)):
            if need > total[name]:
                raise InputError(
                    f"[executor] ray: {work.label} needs {need:g} {name} per worker "
                    f"({name.lower()}s_per_{kind}) and the cluster has {total[name]:g}"
                )
        return cpus, gpus

    def _fits(self, need: tuple[float, float], n: int) -> bool:
        return need[0] * n <= self._free["CPU"] + 1e-9 and need[1] * n <= self._free["GPU"] + 1e-9

    def _take(self, need: tuple[float, float], wanted: int) -> int:
        """Reserve room for up to `wanted` workers of shape `need` (at least one), killing idle pools
        to make room and waiting while others use everything; returns how many. Holds `_cond`."""
        while True:
            n = wanted
            while n > 0 and not self._fits(need, n):
                n -= 1
            if n > 0:
                self._free["CPU"] -= need[0] * n
                self._free["GPU"] -= need[1] * n
                return n
            idle = [k for k, p in self._pools.items() if p.users == 0]
            if idle:
                self._evict(min(idle, key=lambda k: self._pools[k].last_used))
            else:
                self._cond.wait()

    def _give_back(self, need: tuple[float, float], n: int) -> None:
        self._free["CPU"] += need[0] * n
        self._free["GPU"] += need[1] * n
        self._cond.notify_all()

    def _evict(self, key: tuple[str, str, bool]) -> None:
        import ray

        pool = self._pools.pop(key)
        for actor in pool.actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._give_back(pool.need, len(pool.actors))

    def _use_pool(self, work: Work) -> tuple[tuple[str, str, bool], _Pool]:
        """The pool of `work`'s model, created if needed (one threaded actor for a remote API), marked
        in use until `_done_with`."""
        key = (work.kind, work.model.key, work.remote)
        with self._cond:
            pool = self._pools.get(key)
            if pool is None:
                worker, _ = _remotes()
                need = self._need(work)
                n = self._take(need, 1 if work.remote else int(self.settings["workers"]))
                options: dict[str, Any] = {
                    "num_cpus": need[0],
                    "num_gpus": need[1],
                    "max_restarts": -1,
                    "max_task_retries": int(self.settings["max_retries"]),
                }
                if work.remote:
                    options["max_concurrency"] = int(self.settings["max_concurrent_remote"])
                actors = [worker.options(**options).remote() for _ in range(n)]
                pool = self._pools[key] = _Pool(actors, need)
                self.cold_pools += 1
            pool.users += 1
            return key, pool

    def _model_files(self, work: Work) -> Any:
        """For a model the audit trained (its folder in the driver's store), the folder's files put in
        Ray's object store once, for each worker to copy; None where every node reads the store
        (`shared_store`) or the model is not a trained one."""
        if work.model.kind != "trained" or work.model.model_dir is None or self.settings["shared_store"]:
            return None
        import ray

        key = work.model.key
        with self._cond:
            if key not in self._files:
                root = Path(work.model.model_dir)
                files = {
                    str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
                }
                self._files[key] = ray.put(files)
            return self._files[key]

    def _done_with(self, key: tuple[str, str, bool], pool: _Pool) -> None:
        with self._cond:
            pool.users -= 1
            pool.last_used = time.monotonic()
            self._cond.notify_all()

    def worker_pids(self) -> list[int]:
        """The process ids of every actor now alive (for tests and benchmarks)."""
        import ray

        with self._cond:
            actors = [a for pool in self._pools.values() for a in pool.actors]
        return ray.get([a.pid.remote() for a in actors])

    # ---- the Executor protocol --------------------------------------------------------------------------

    def run(self, works: Sequence[Work]) -> Iterator[tuple[Work, Outcome]]:
        """Every item, a model at a time (the core sends one artifact per call; threads run several)."""
        if not works:
            return
        self._connect()
        groups: dict[tuple[str, str, bool], list[Work]] = {}
        for work in works:
            groups.setdefault((work.kind, work.model.key, work.remote), []).append(work)
        for group in groups.values():
            if group[0].kind == "generate" or group[0].remote:
                yield from self._run_on_pool(group)
            else:
                yield from self._run_tasks(group)

    def _run_on_pool(self, works: list[Work]) -> Iterator[tuple[Work, Outcome]]:
        import ray

        key, pool = self._use_pool(works[0])
        pending: dict[Any, Work] = {}
        try:
            for work in works:
                actor = pool.actors[next(pool.turn) % len(pool.actors)]
                pending[actor.run.remote(work)] = work
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                work = pending.pop(done[0])
                yield work, self._result(ray, done[0], work)
        finally:
            self._cancel(ray, pending)
            self._done_with(key, pool)

    def _run_tasks(self, works: list[Work]) -> Iterator[tuple[Work, Outcome]]:
        """Trainings and queries of local models: Ray tasks, each holding its resources only while it
        runs, on worker processes Ray reuses (each keeps its last few models built, so a suspect is
        loaded once per process, and no process is started per model)."""
        import ray

        _, task = _remotes()
        need = self._need(works[0])
        options = {"num_cpus": need[0], "num_gpus": need[1], "max_retries": int(self.settings["max_retries"])}
        files = self._model_files(works[0])
        todo, pending = list(works), {}
        try:
            while todo or pending:
                while todo:
                    with self._cond:
                        if pending and not self._fits(need, 1):
                            break
                        self._take(need, 1)
                    work = todo.pop(0)
                    pending[task.options(**options).remote(work, files)] = work
                done, _ = ray.wait(list(pending), num_returns=1)
                work = pending.pop(done[0])
                with self._cond:
                    self._give_back(need, 1)
                yield work, self._result(ray, done[0], work)
        finally:
            self._cancel(ray, pending)
            with self._cond:
                self._give_back(need, len(pending))

    @staticmethod
    def _cancel(ray: Any, pending: Mapping[Any, Work]) -> None:
        for ref in pending:  # an error or Ctrl-C on the driver: drop what is still queued
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - an already finished or uncancellable item
                pass

    def _result(self, ray: Any, ref: Any, work: Work) -> Outcome:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the work's own error: raised as itself
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            raise TrainproveError(
                f"ray: the worker running {work.label} (chunk {work.index}) died "
                f"{int(self.settings['max_retries']) + 1} times; last: {str(exc).splitlines()[0]}"
            ) from None

    def close(self) -> None:
        with self._cond:
            if not self._connected:
                return
            for key in list(self._pools):
                self._evict(key)
            self._files.clear()
            self._connected = False
            owns, self._owns_cluster = self._owns_cluster, False
        if owns:
            import ray

            ray.shutdown()
