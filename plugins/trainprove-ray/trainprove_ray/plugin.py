"""Registers the `ray` executor. Ray itself is imported on the first work item, never by
`trainprove --help`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import ExecutorSpec, Option, hookimpl


def _address(value: Any, settings: Mapping[str, Any]) -> None:
    if not str(value).strip():
        raise ValueError("is empty; leave it out to start a local cluster, or write `auto` or host:port")


def _per_kind(what: str, kind: str, default: float) -> Option:
    return Option(
        f"{what}_per_{kind}",
        "float",
        default,
        f"{'GPUs' if what == 'gpus' else 'CPUs'} each {kind} worker holds (Ray resources; "
        "fractions share "
        "a device)",
        min=0,
    )


OPTIONS = (
    Option(
        "address",
        "str",
        None,
        "the Ray cluster: absent, start one in this process (on this machine's cores and GPUs) and stop it "
        "when the audit ends; `auto`, the cluster `ray start` runs here; or host:port / ray://host:port",
        check=_address,
    ),
    Option(
        "num_cpus", "int", None, "CPUs of the local cluster started when `address` is absent (all)", min=1
    ),
    Option(
        "num_gpus", "int", None, "GPUs of the local cluster started when `address` is absent (all)", min=0
    ),
    Option(
        "workers",
        "int",
        2,
        "workers (Ray actors) per model: each builds its model once and runs that model's chunks",
        min=1,
    ),
    _per_kind("cpus", "generation", 1.0),
    _per_kind("gpus", "generation", 0.0),
    _per_kind("cpus", "training", 1.0),
    _per_kind("gpus", "training", 0.0),
    _per_kind("cpus", "query", 1.0),
    _per_kind("gpus", "query", 0.0),
    Option(
        "max_concurrent_remote",
        "int",
        4,
        "query chunks in flight at once per remote suspect (an HTTP API): one worker, this many threads",
        min=1,
    ),
    Option(
        "shared_store",
        "bool",
        False,
        "every node mounts the store at the driver's path: workers open trained models (the shadow, "
        "controls) there instead of receiving a copy of each through Ray's object store",
    ),
    Option(
        "max_retries",
        "int",
        3,
        "how often a chunk is run again when its worker dies (the chunk's error is never retried)",
        min=0,
    ),
)


def _ray(settings: Mapping[str, Any]) -> Any:
    from .executor import RayExecutor

    return RayExecutor(settings)


@hookimpl
def trainprove_executors() -> list[ExecutorSpec]:
    return [
        ExecutorSpec(
            "ray",
            _ray,
            "run generation, training and queries on a Ray cluster: one worker per model builds it once; "
            "independent suspects and models at once; results stored by the driver as they arrive",
            OPTIONS,
        )
    ]
