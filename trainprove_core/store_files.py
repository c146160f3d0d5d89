"""The store's files: keys and digests, atomic writes, modes, and the errors of reading and writing them.

Everything `trainprove_core.store.Store` builds on that needs no store: what a key is (`content_key`), how a
file is written so a kill never leaves half of it in place (`_atomic_savez`, `_atomic_write_text`), which
mode it gets (`store_modes`), and the one-line errors of a full disk or a file another user owns.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrainproveError

META = "meta.json"
DATA = "data.npz"
FORMAT = 1  # meta.json's "trainprove_store"; a meta.json without it is an entry of an older store
PART_DIGEST = "__trainprove_sha256__"  # a saved chunk's own digest, stored inside it
LOG = "store.log"
LOCKS, CHECKPOINTS, QUARANTINE = "locks", "checkpoints", "quarantine"
# Folders of the store that hold no artifacts: its own bookkeeping, an http suspect's ledger of what it was
# sent and paid for (trainprove-suspects), and the cache of weight hashes (`identity_cache`). `verify`,
# `gc` and the sweep leave them alone.
NOT_KINDS = (LOCKS, CHECKPOINTS, QUARANTINE, "ledgers", "file-digests")
RECENT = 3600.0
"""Seconds: `remove_unused` keeps an entry read this recently whatever `days` says, unless told (an audit
running now may be reading it)."""
WAIT_NOTICE = 2.0  # seconds of waiting for another builder before saying so on stderr


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_key(identity: Mapping[str, Any]) -> str:
    """The store key of an identity: 24 hex digits of SHA-256 over its canonical JSON."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:24]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed that depends only on `parts` (e.g. set seed, prompt, index), stable across runs,
    platforms and Python versions."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def arrays_sha256(arrays: Mapping[str, np.ndarray], *bound_to: Any) -> str:
    """SHA-256 over `bound_to` (an artifact's key and a chunk's index) and the arrays' names, dtypes,
    shapes and bytes: a chunk copied from another artifact or index does not match."""
    digest = hashlib.sha256(canonical_json(list(bound_to)).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        digest.update(canonical_json([name, a.dtype.str, list(a.shape)]).encode())
        if a.size:
            digest.update(memoryview(np.ascontiguousarray(a).reshape(-1)).cast("B"))
    return digest.hexdigest()


class DamagedEntry(TrainproveError):
    """A store entry failed its check and was not made again by itself (paid answers)."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class _Damage(Exception):
    """What is wrong with an entry (internal: turned into a quarantine or a `DamagedEntry`)."""


@dataclass
class Problem:
    """One damaged entry that `Store.verify` found: its path, store kind, what is wrong, and whether it
    holds paid answers (`rows`: how many images they answer, where known)."""

    path: Path
    kind: str
    reason: str
    paid: bool | None = False  # None: not known (a saved chunk of answers, an unreadable meta.json)
    rows: int | None = None
    quarantined: Path | None = None
    busy: str | None = None  # being built by another process: left alone
    denied: str | None = None  # not this user's to read (then it is not damaged) or to move: why, in words


def _atomic_savez(path: Path, arrays: Mapping[str, np.ndarray], durable: bool = True) -> None:
    """Write `arrays` to `path` through a temporary file renamed into place. `durable`: fsync it before the
    rename (10 ms a file on a plain disk), so a power loss cannot leave it empty; without, such a file
    is caught by its digest when read and made again (for what can be made again: not paid answers)."""
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=".npz")
    try:
        set_mode(tmp, fd=fd)  # mkstemp makes it 0600, which the rename would keep
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-")
    try:
        set_mode(tmp, fd=fd)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """`load_npz`, with every way a file can be unreadable turned into one `_Damage`."""
    try:
        return load_npz(path)
    except FileNotFoundError:
        raise _Damage(f"{path.name} is missing") from None
    except PermissionError:
        raise NotPermitted(path, "reading it") from None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _Damage(f"{path.name} cannot be read ({type(exc).__name__}: {exc})") from None


def _data_files(directory: Path) -> dict[str, Path]:
    """Every file of an entry but its meta.json, by its path relative to the entry (POSIX form)."""
    return {
        p.relative_to(directory).as_posix(): p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).as_posix() != META
    }


def _utc(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


_CANNOT_WRITE = {
    _errno.ENOSPC: "no space left on the device",
    _errno.EDQUOT: "the disk quota is exceeded",
    _errno.EROFS: "the file system is read-only",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "not permitted",
    _errno.EFBIG: "the file is too large for the file system",
}


def _errno_of(exc: BaseException) -> int | None:
    """The errno of a failed write: an OSError's, or one a library wrapped in its own exception (the
    safetensors writer says `I/O error: No space left on device (os error 28)`)."""
    if isinstance(exc, OSError):
        return exc.errno
    import re

    found = re.search(r"\(os error (\d+)\)|Os \{ code: (\d+)|\[Errno (\d+)\]", str(exc))
    return int(next(g for g in found.groups() if g)) if found else None


class CannotWrite(TrainproveError):
    """A write failed for want of room or permission: one line naming the path and what was kept."""

    def __init__(self, path: Path | str, code: int, kept: str) -> None:
        self.path, self.errno = Path(path), code
        super().__init__(
            f"{path}: cannot write: {_CANNOT_WRITE[code]} ({_errno.errorcode.get(code, code)}). {kept}"
        )


def cannot_write(path: Path | str, exc: BaseException, kept: str) -> CannotWrite | None:
    """`CannotWrite` for `exc` if it is a write that failed for want of room or permission (ENOSPC, EDQUOT,
    EROFS, EACCES, EPERM, EFBIG), else None (the caller re-raises `exc`). `kept` says what was kept."""
    code = _errno_of(exc)
    if code not in _CANNOT_WRITE:
        return None
    where = getattr(exc, "filename", None) or path
    return CannotWrite(where, code, kept)


STORE_KEPT = (
    "Every chunk, model and answer finished before is kept in the store, and nothing half-written is "
    "taken for finished; make room (or use --store on another disk) and run the same command again to "
    "resume."
)


MODE_VARIABLE = "TRAINPROVE_STORE_MODE"
_modes: tuple[int, int, bool] | None = None


def store_modes() -> tuple[int, int, bool]:
    """(file mode, folder mode, forced) of what the store creates. By default what the umask allows, as
    for any file `open()` creates (0644 and 0755 under umask 022): temporary files are created 0600 and
    renamed into place, so they are given this mode first. `$TRAINPROVE_STORE_MODE` (octal, e.g. `664`
    or `660` for a store shared by a group) sets the file mode whatever the umask; folders get it with x
    wherever r is set, plus setgid, so what is made in them keeps the store's group. `forced`: the
    variable is set (every folder the store makes is given the mode too)."""
    global _modes
    if _modes is None:
        text = os.environ.get(MODE_VARIABLE, "").strip()
        if text:
            try:
                mode = int(text, 8)
            except ValueError:
                mode = -1
            if not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
                raise TrainproveError(
                    f"${MODE_VARIABLE}={text!r}: not a file mode for the store; write one in octal that "
                    "lets the owner read and write, e.g. 664 (group and others read) or 660 (a group "
                    "shares the store)"
                )
            _modes = (mode, mode | (mode & 0o444) >> 2 | 0o2000, True)
        else:
            umask = _umask()
            _modes = (0o666 & ~umask, 0o777 & ~umask, False)
    return _modes


def _umask() -> int:
    """This process's umask: read where Linux says it (setting it to read it back would change it for a
    moment under every other thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def set_mode(path: Path | str, folder: bool = False, fd: int | None = None) -> None:
    """Give something the store just made its mode (`store_modes`): a temporary file before it is
    renamed into place, a folder made by `tempfile.mkdtemp`, or, with `$TRAINPROVE_STORE_MODE`, anything.
    Not ours to change (another user's): left as it is."""
    file_mode, folder_mode, _ = store_modes()
    try:
        if fd is not None:
            os.fchmod(fd, folder_mode if folder else file_mode)
        else:
            os.chmod(path, folder_mode if folder else file_mode)
    except PermissionError:
        pass


def make_folder(path: Path) -> None:
    """`path.mkdir(parents=True, exist_ok=True)`; with `$TRAINPROVE_STORE_MODE`, each folder made is given
    the store's folder mode."""
    if path.is_dir():
        return
    if not store_modes()[2]:
        path.mkdir(parents=True, exist_ok=True)
        return
    missing = [path, *(p for p in path.parents if not p.exists())]
    path.mkdir(parents=True, exist_ok=True)
    for made in missing:
        set_mode(made, folder=True)


class NotPermitted(TrainproveError):
    """The store holds something this user may not read or change (a store shared between users whose
    modes do not allow it): never taken for damage, never quarantined."""

    def __init__(self, path: Path, doing: str, root: Path | None = None) -> None:
        self.path = Path(path)
        super().__init__(not_permitted_message(self.path, doing, root))


def not_permitted_message(path: Path, doing: str, root: Path | None = None) -> str:
    """One line: which file, whose it is, its mode, who is asking, and what to do."""
    import grp
    import pwd

    def name(lookup: Any, ident: int) -> str:
        try:
            return lookup(ident)[0]
        except KeyError:
            return str(ident)

    owner = path  # the file, or (one not made yet) the nearest folder above it that is there
    while not os.path.lexists(owner) and owner != owner.parent:
        owner = owner.parent
    try:
        st = owner.stat()
        whose = (
            f"{'it' if owner == path else owner} belongs to user {name(pwd.getpwuid, st.st_uid)}, group "
            f"{name(grp.getgrgid, st.st_gid)}, mode {st.st_mode & 0o7777:04o}"
        )
    except OSError:
        whose = "its folder cannot be read"
    me = name(pwd.getpwuid, os.getuid())
    where = root if root is not None else path.parent
    return (
        f"{path}: permission denied ({doing}); {whose}, and this process runs as {me}. Nothing was "
        "changed (what you may not read or change is not damaged). Ask its owner (or root) to share the "
        f"store with your group (`chgrp -R GROUP {where} && chmod -R g+rwX {where}`, and {MODE_VARIABLE}=664 "
        "for every user of it: docs/store.md, Sharing a store), or use a store of your own (--store DIR "
        "or $TRAINPROVE_STORE)."
    )
