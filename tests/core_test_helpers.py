"""Shared pieces of the core's tests (a module name of its own: plugins' test folders have conftests too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TRAINPROVE = str(Path(sys.executable).parent / "trainprove")


def run_cli(
    *args: str, timeout: float | None = 600, cwd: str | Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`trainprove ARGS...` as a user runs it, in its own process (`timeout=None` for long end-to-end
    runs: a loaded machine is slow, not wrong)."""
    return subprocess.run(
        [TRAINPROVE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


def base_audit(**overrides) -> dict:
    doc = {
        "task": {"classes": ["disc", "ring", "hbar"], "image_size": 16},
        "generator": {"use": "shapes", "style": 0.0},
        "shadow": {
            "prompt": "a {label}",
            "per_class": 60,
            "arch": "test_resnet",
            "epochs": 12,
            "batch_size": 64,
            "hflip": False,
            "crop_scale": [0.7, 1.0],
        },
        "validation": {"prompt": "a photo of a {label}", "per_class": 100, "batch_size": 15},
        "suspect": [],
    }
    doc.update(overrides)
    return doc
