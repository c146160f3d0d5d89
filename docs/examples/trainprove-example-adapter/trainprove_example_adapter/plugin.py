"""Entry point: registers the `npz-linear` suspect adapter.

trainprove imports this module whenever it starts (even for `--help`), so it holds only the hook, the
audit-file keys and a factory that imports the real work lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import Option, SuspectAdapterSpec, Task, hookimpl

OPTIONS = (
    Option("weights", "path", help="the .npz file: W (classes x features), b (classes), classes (names)"),
    Option("side", "int", 8, help="images are resized to side x side grey pixels before the linear layer"),
    Option("batch_size", "int", 512, help="images per cached chunk of answers"),
)


def _factory(settings: Mapping[str, Any], task: Task):
    from .model import NpzLinearSuspect

    return NpzLinearSuspect(settings, task)


@hookimpl
def trainprove_suspect_adapters() -> list[SuspectAdapterSpec]:
    return [
        SuspectAdapterSpec(
            "npz-linear", _factory, "a linear classifier over grey pixels, stored as .npz", OPTIONS
        )
    ]
