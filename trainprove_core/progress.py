"""Progress bars for long steps (tqdm, on stderr), off when not wanted or not on a terminal."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass


@contextmanager
def progress(total: int, desc: str, unit: str = "it", enabled: bool = True) -> Any:
    """A tqdm bar, or a silent stand-in when `enabled` is false, `TRAINPROVE_PROGRESS=0`, or stderr is
    not a terminal (so logs and CI output stay clean)."""
    if not enabled or os.environ.get("TRAINPROVE_PROGRESS") == "0" or not sys.stderr.isatty():
        yield _Silent()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True) as bar:
        yield bar
