"""Load-time checks that plugins share, for `Option(check=...)` and a spec's `validate`.

Each raises `ValueError` with a sentence for the user; the core prefixes the file, the table and the key.
They are cheap: nothing here downloads, loads a model or reaches the network, and torch is imported only
to ask it about a device other than `auto` or `cpu`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Check = Callable[[Any, Mapping[str, Any]], None]


def not_blank(value: str, settings: Mapping[str, Any]) -> None:
    """A name that must say something: not empty, not only spaces, no spaces around it."""
    if not value.strip():
        raise ValueError("must not be empty")
    if value != value.strip():
        raise ValueError(f"{value!r} has spaces around it")


def prompt_template(template: str, settings: Mapping[str, Any]) -> None:
    """A prompt template: text in which `{label}` stands for the class name, and nothing else between
    braces (`{{` and `}}` are braces). `str.format` would run `{label.__class__}` or `{label[0]}` (an
    attribute or an index of the class name) and `{0}`; they are refused, as is a conversion or a format
    spec (`{label!r}`, `{label:>9}`)."""
    import string

    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"{template!r} is not a valid template (use {{label}} for the class name): {exc}"
        ) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name != "label" or spec or conversion:
            written = (
                "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            raise ValueError(
                f"{template!r} is not a valid template: {written} is not allowed; write {{label}} for the "
                "class name (and {{ or }} for a brace)"
            )


def per_channel(*, positive: bool) -> Check:
    """Three finite numbers, one per RGB channel (a normalisation mean, or with `positive` a std, where
    0 or less would divide every pixel into inf or NaN)."""

    def check(value: list[float], settings: Mapping[str, Any]) -> None:
        if len(value) != 3:
            raise ValueError(f"needs one value per channel (3 numbers, R, G, B), got {len(value)}: {value}")
        if positive and any(v <= 0 for v in value):
            raise ValueError(f"every value must be above 0 (it divides the pixels), got {value}")

    return check


def http_url(value: str, settings: Mapping[str, Any]) -> None:
    """An absolute http:// or https:// URL with a host."""
    if not value.strip():
        raise ValueError("must be an http:// or https:// URL, got an empty string")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it: a port that is not a number in range raises
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"{value!r} must be an http:// or https:// URL ({got})")
    if not parts.hostname or re.search(r"\s", value):
        raise ValueError(f"{value!r} is not a valid URL: it needs a host, e.g. http://127.0.0.1:8080")


_DEVICE = re.compile(r"^(?P<type>[a-z_]+)(?::(?P<index>\d+))?$")


def torch_device(value: str, settings: Mapping[str, Any]) -> None:
    """`auto`, or a torch device that exists on this machine: `cpu`, `cuda`, `cuda:N` (N below the number
    of GPUs), `mps`, or another type torch knows and reports available."""
    if value in ("auto", "cpu"):
        return
    match = _DEVICE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a device name (e.g. auto, cpu, cuda, cuda:1, mps)")
    import torch

    try:
        torch.device(value)
    except RuntimeError:
        raise ValueError(
            f"{value!r} is not a device torch knows (e.g. auto, cpu, cuda, cuda:1, mps)"
        ) from None
    kind, index = match["type"], int(match["index"]) if match["index"] is not None else None
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{value!r}: this machine has no CUDA GPU (use auto or cpu)")
        if index is not None and index >= count:
            raise ValueError(f"{value!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{value!r}: this machine has no MPS (Apple GPU) device (use auto or cpu)")
        return
    backend = getattr(torch, kind, None)
    available = getattr(backend, "is_available", None)
    if not callable(available) or not available():
        raise ValueError(f"{value!r}: torch has no {kind} device on this machine (use auto or cpu)")


def number(
    kind: type = float,
    min: float | None = None,  # noqa: A002 - click's own names
    max: float | None = None,  # noqa: A002
    min_open: bool = False,
    max_open: bool = False,
):
    """The click parameter type of every numeric CLI option: an int or a finite float within bounds.
    `nan`, `inf` and `-inf` are refused by name (`nan` passes every comparison a range check makes, so a
    plain `FloatRange(min=0)` lets it through: `store gc --unused-days nan` once removed every entry)."""
    import click

    if kind is int:
        return click.IntRange(min, max, min_open=min_open, max_open=max_open)

    class FiniteFloat(click.FloatRange):
        name = "float"

        def convert(self, value, param, ctx):  # type: ignore[override]
            import math

            converted = click.FLOAT.convert(value, param, ctx)
            if not math.isfinite(converted):
                self.fail(f"{value!r} is not a finite number", param, ctx)
            return super().convert(converted, param, ctx)

    return FiniteFloat(min, max, min_open=min_open, max_open=max_open)


def output_folder(path: Path | str, what: str) -> None:
    """Refuse, before any work, a folder that output cannot be written to: a path through a file
    (`file/x`, `file/../x`), a symlink loop, a name too long, a file where the folder should be, or a
    folder (or the nearest one that exists above it) in which no file can be made (read-only, not
    permitted, full). Raises `InputError` naming `what` (`--out`, say) and the path."""
    folder_path(path, what, writable=True)


def folder_path(path: Path | str, what: str, writable: bool = False) -> None:
    """`output_folder`, but a folder that cannot be written to passes unless `writable` (a store may be
    read-only: another user's, or one whose entries are all made)."""
    import errno
    import os
    import stat
    import tempfile

    from .errors import InputError

    path = Path(path)
    for at in [path, *path.parents]:
        try:
            st = os.stat(at)
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there yet, or a file on the way: an ancestor says which
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InputError(f"{what} {path}: {at} is a loop of symbolic links") from None
            raise InputError(f"{what} {path}: {at}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            where = "is" if at == path else f"goes through {at}, which is"
            raise InputError(f"{what} {path}: {where} a file, not a folder") from None
        if not writable:
            return
        try:
            fd, probe = tempfile.mkstemp(dir=at, prefix=".trainprove-probe-")
        except OSError as exc:
            raise InputError(
                f"{what} {path}: nothing can be written in {at} ({exc.strerror}); choose another folder"
            ) from None
        os.close(fd)
        os.unlink(probe)
        return
