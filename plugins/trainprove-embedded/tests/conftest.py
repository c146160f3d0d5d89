from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import trainprove_embedded.plugin as plugin

from trainprove_core.config import check_plugin_settings, validate_table
from trainprove_core.records import GenerationRequest, Generator
from trainprove_core.testing import isolated_plugins


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def make_generator() -> Callable[..., Generator]:
    """Build a generator the way an audit does: the plugin's spec, its options validated, its factory."""
    plugins = isolated_plugins((plugin, "trainprove-embedded"))
    cache: dict[tuple, Generator] = {}

    def make(name: str, **table: Any) -> Generator:
        key = (name, tuple(sorted(table.items())))
        if key not in cache:
            registered = plugins.get("generator", name)
            settings = validate_table(table, registered.spec.options, source="test.toml", where="generator")
            check_plugin_settings(registered, settings, source="test.toml", where="generator")
            cache[key] = registered.spec.factory(settings)
        return cache[key]

    return make


def _requests(seeds: list[int], classes: list[int] | None = None) -> list[GenerationRequest]:
    classes = classes if classes is not None else [i % 10 for i in range(len(seeds))]
    return [GenerationRequest(f"a {c}", c, str(c), s) for s, c in zip(seeds, classes, strict=True)]


@pytest.fixture(scope="session")
def make_requests() -> Callable[..., list[GenerationRequest]]:
    """`make_requests(seeds, classes=None)`: one request per seed; classes cycle through 0..9 unless given."""
    return _requests
