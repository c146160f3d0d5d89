"""Weight hashes that are not computed again while the file is unchanged.

An adapter's identity holds the SHA-256 of its weights (the answers are keyed by it), and hashing every
checkpoint on every run costs as much as loading it. `file_sha256(path)` keeps each file's hash in a small
entry under the audit's store (`<store>/file-digests/`), keyed by the file's resolved path and valid while
its size, modification time, inode and change time (st_ctime_ns, which no user call can set back) are
those it was hashed with; any change and the file is hashed again.

When the hash is verified: whenever weights are loaded to answer. `read_hashed(path)` reads the bytes an
adapter loads and hashes them in the same pass (no second read), and the adapter compares that hash with
the one its identity was made with before its first answer is stored (`check_loaded`), so no answer is
ever stored under the hash of other weights. A suspect whose answers are all cached is never loaded, so
its hash is the cached one: `TRAINPROVE_REHASH=1` hashes every file again (and refreshes the entries).

`using(directory)` makes a directory the cache for the code it wraps (an audit wraps the building of its
adapters with its store's); outside it, every call hashes the file. New entries made inside the block are
written when it ends without an exception, so an audit refused for bad input leaves its store untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from .errors import InputError

KIND = "file-digests"
"""The folder of the store the entries live in."""

_directory: ContextVar[Path | None] = ContextVar("trainprove_file_digests", default=None)
_pending: ContextVar[dict[Path, dict] | None] = ContextVar("trainprove_file_digests_pending", default=None)


@contextmanager
def using(directory: Path | None) -> Iterator[None]:
    """Cache file hashes under `directory` (None: no cache) for the code inside the block."""
    pending: dict[Path, dict] = {}
    token = _directory.set(Path(directory) if directory is not None else None)
    token_pending = _pending.set(pending)
    try:
        yield
    finally:
        _directory.reset(token)
        _pending.reset(token_pending)
    if directory is not None:  # the block succeeded: keep what it learnt
        for entry_path, entry in pending.items():
            _write(entry_path, entry)


def cache_directory() -> Path | None:
    """The directory `file_sha256` caches in here (None: it does not cache)."""
    return _directory.get()


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]


def _entry(directory: Path, path: Path) -> Path:
    return directory / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remember(directory: Path | None, path: Path, stat: os.stat_result, digest: str) -> None:
    if directory is None:
        return
    entry = {"path": str(path), "stat": _stamp(stat), "sha256": digest}
    pending = _pending.get()
    if pending is not None and directory == _directory.get():
        pending[_entry(directory, path)] = entry  # written when the `using` block ends well
    else:
        _write(_entry(directory, path), entry)


def _write(entry_path: Path, entry: dict) -> None:
    try:
        entry_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry_path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        os.replace(tmp, entry_path)
    except OSError:  # a read-only store still answers; the hash is only not remembered
        pass


def file_sha256(path: str | Path, directory: Path | None = None) -> str:
    """The SHA-256 (hex) of the file at `path`, from the cache while the file is unchanged.

    `directory` is the cache (default: the one `using` set; None there: no cache)."""
    directory = directory if directory is not None else _directory.get()
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if directory is not None and not os.environ.get("TRAINPROVE_REHASH"):
        try:
            pending = _pending.get() or {}
            entry = pending.get(_entry(directory, path)) or json.loads(
                _entry(directory, path).read_text(encoding="utf-8")
            )
            if entry.get("path") == str(path) and entry.get("stat") == _stamp(stat):
                return str(entry["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    digest = _hash_file(path)
    if path.stat().st_mtime_ns == stat.st_mtime_ns:  # not remembered if it changed while being read
        _remember(directory, path, stat, digest)
    return digest


def read_hashed(path: str | Path, directory: Path | None = None) -> tuple[bytes, str]:
    """The bytes of the file at `path` and their SHA-256, read once (to load them); the cache entry of
    `path` is refreshed with that hash when the file did not change while it was read."""
    directory = directory if directory is not None else _directory.get()
    path = Path(path).resolve()
    try:
        before = path.stat()
        data = path.read_bytes()
        after = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if _stamp(before) == _stamp(after):
        _remember(directory, path, after, digest)
    return data, digest


def check_loaded(path: str | Path, expected: str, actual: str) -> None:
    """Raise InputError unless `actual`, the hash of the bytes just read from `path` to load it, is
    `expected`, the hash the adapter's identity was made with: the file changed after the audit looked
    at it, and no answer may be stored under the old hash."""
    if actual != expected:
        raise InputError(
            f"{path} changed while the audit ran (its SHA-256 is now {actual[:16]}..., the audit keyed its "
            f"answers by {expected[:16]}...): nothing was stored for it; run the audit again"
        )
