"""Entry point: registers the four diffusion generators.

Imported whenever trainprove starts, so it imports nothing heavy: torch and diffusers load inside the
factory, when an audit actually builds a generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trainprove_core import Generator, GeneratorSpec, hookimpl

from .backends import BACKENDS


def _factory(name: str) -> Callable[[Mapping[str, Any]], Generator]:
    def build(settings: Mapping[str, Any]) -> Generator:
        from .generator import DiffusersGenerator

        return DiffusersGenerator(BACKENDS[name], settings)

    return build


@hookimpl
def trainprove_generators() -> list[GeneratorSpec]:
    return [GeneratorSpec(b.name, _factory(b.name), b.description, b.options()) for b in BACKENDS.values()]
