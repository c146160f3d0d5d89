"""What the machine can hold: an audit's image sets against this machine's memory and the store's disk,
refused before any work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ConfigError
from .tables import AuditConfig


def image_sets(config: AuditConfig) -> list[tuple[str, int, bool]]:
    """Every image set the audit makes: (the table whose `per_class` sizes it, images, trained on)."""
    classes = config.task.num_classes
    sets = [("shadow", config.shadow.per_class * classes, True)]
    sets.append(("validation", config.validation.per_class * classes, False))
    for table, image_set in (
        ("negative_control", config.control_set),
        ("positive_control", config.positive_set),
    ):
        if image_set is not None:
            sets.append((table, image_set.per_class * classes, True))
    return sets


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def physical_memory() -> int | None:
    """This machine's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _largest(config: AuditConfig) -> str:
    return max(image_sets(config), key=lambda s: s[1])[0]


def memory_needed(config: AuditConfig) -> int:
    """Bytes an audit holds at once, at least: every image set (uint8, at the task's size) and the float32
    copy a trainer makes of the largest training set."""
    per_image = config.task.image_size**2 * 3
    sets = image_sets(config)
    return (
        sum(n for _, n, _ in sets) * per_image + 4 * max(n for _, n, trained in sets if trained) * per_image
    )


def check_memory(config: AuditConfig, available: int | None = None) -> None:
    """Refuse an audit whose image sets cannot fit in this machine's memory (`available` bytes, default:
    all of it), naming the largest set's `per_class`."""
    available = physical_memory() if available is None else available
    needed = memory_needed(config)
    if available is None or needed <= available:
        return
    table = _largest(config)
    raise ConfigError(
        f"key 'per_class': this audit holds at least {_size(needed)} of images in memory (its image sets "
        f"at {config.task.image_size} px, and a float copy of the largest training set), more than this "
        f"machine's {_size(available)}; lower per_class here or in the other sets, or [task] image_size",
        config.source,
        table,
    )


def check_disk(config: AuditConfig, store_root: Path, free: int | None = None) -> None:
    """Refuse an audit whose image sets cannot fit on the store's disk (`free` bytes, default: what the
    disk of `store_root` has free): each set is written in chunks and then merged, twice its size."""
    per_image = config.task.image_size**2 * 3
    sets = image_sets(config)
    needed = sum(n for _, n, _ in sets) * per_image + max(n for _, n, _ in sets) * per_image
    if free is None:
        existing = Path(store_root)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            return
    if needed <= free:
        return
    raise ConfigError(
        f"key 'per_class': this audit writes about {_size(needed)} of images to the store ({store_root}) "
        f"while they are made, and its disk has {_size(free)} free; lower per_class here or in the other "
        "sets, or [task] image_size, or use --store on a larger disk",
        config.source,
        _largest(config),
    )
