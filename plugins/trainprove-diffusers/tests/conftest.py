"""Shared fixtures: tiny random-weight pipelines saved once per session, one thread for torch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trainprove_diffusers import tiny  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    # Two threads on a busy two-core machine made these tests 10-40x slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """generator name -> the settings (`model`, and `decoder`) pointing at a tiny pipeline of that backend
    saved with save_pretrained."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {name: tiny.save(name, root / name) for name in tiny.TINY_RESOLUTION}
