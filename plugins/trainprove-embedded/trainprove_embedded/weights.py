"""Where the shipped weights live, and the manifest that pins their hashes.

`weights/manifest.json` records, for every weight file, its SHA-256, the model and house style it was
trained for, and how training went (seconds, steps, final loss); `train_generators.py` writes it. Loading
checks the hash, so a truncated or edited file is an `InputError`, never a silently different generator.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from trainprove_core import InputError

MANIFEST = "manifest.json"
RETRAIN_HINT = (
    "reinstall trainprove-embedded, or rebuild the weights with "
    "plugins/trainprove-embedded/train_generators.py"
)


def shipped_dir() -> Path:
    """The package's own weights directory."""
    return Path(str(resources.files("trainprove_embedded") / "weights"))


def file_name(model: str, house_style: bool) -> str:
    """The weight file's name (without extension) of `model` trained with or without its house style."""
    return f"{model}-{'styled' if house_style else 'plain'}"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a weights directory, or an `InputError` naming it."""
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the embedded generators' manifest {path}: {exc}; {RETRAIN_HINT}"
        ) from exc


def locate(model: str, house_style: bool, suffix: str, directory: Path | None = None) -> tuple[Path, str]:
    """The weight file of `model` and its SHA-256, checked against the manifest.

    Raises `InputError` naming the file when it is missing, unlisted, or its hash differs.
    """
    directory = directory or shipped_dir()
    name = file_name(model, house_style) + suffix
    entry = read_manifest(directory).get("files", {}).get(name)
    path = directory / name
    if entry is None:
        raise InputError(f"{directory / MANIFEST} lists no weights {name!r} for {model}; {RETRAIN_HINT}")
    if not path.is_file():
        raise InputError(f"weights file {path} of {model} is missing; {RETRAIN_HINT}")
    digest = sha256_of(path)
    if digest != entry["sha256"]:
        raise InputError(
            f"weights file {path} of {model} is corrupt: SHA-256 {digest[:16]}..., the manifest expects "
            f"{entry['sha256'][:16]}...; {RETRAIN_HINT}"
        )
    return path, digest
