"""The classification task an audit is about: the suspect's class names, in order, and its image size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """Class names in the suspect's index order, and the side of the square images the suspect takes."""

    classes: tuple[str, ...]
    image_size: int

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ValueError("a task needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise ValueError(f"class names must be unique; repeated: {', '.join(dupes)}")
        if self.image_size < 4:
            raise ValueError(f"image_size must be at least 4, not {self.image_size}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def label_map(self, names: Sequence[str]) -> list[int]:
        """For each name of another label space, its index in this task; raises ValueError naming the
        classes the other space is missing or adds."""
        missing = [c for c in self.classes if c not in names]
        extra = [n for n in names if n not in self.classes]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"not in the task {extra}")
            raise ValueError("label space does not match the task's classes: " + "; ".join(parts))
        return [self.classes.index(n) for n in names]

    def order_mismatch(self, expected: Sequence[str]) -> str | None:
        """None when the classes are `expected`, in that order; else a phrase saying how they differ (for a
        generator conditioned on the class index, where the order is the meaning)."""
        expected = tuple(expected)
        if self.classes == expected:
            return None
        missing = [c for c in expected if c not in self.classes]
        extra = [c for c in self.classes if c not in expected]
        if not missing and not extra:
            return "the same names in another order"
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown to it: {', '.join(extra)}")
        return "; ".join(parts)
