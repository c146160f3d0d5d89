"""The built-in `local` executor, registered through the core's own entry point like any plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .hookspecs import hookimpl
from .records import ExecutorSpec


class LocalExecutor:
    """Runs chunks one after another in this process (the default)."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        for item in items:
            yield item, fn(item)


def _local(settings: Mapping[str, Any]) -> LocalExecutor:
    return LocalExecutor()


@hookimpl
def trainprove_executors() -> list[ExecutorSpec]:
    return [ExecutorSpec("local", _local, "run generation and queries in this process, one chunk at a time")]
