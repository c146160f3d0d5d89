"""A content-addressed cache of everything expensive: image sets, trained models, suspect answers.

An artifact's key is the SHA-256 of the canonical JSON of everything that produced it (its *identity*).
Work is saved in chunks, each written to a temporary file and renamed into place, so a run killed at any
point (kill -9 included) keeps every finished chunk and resumes from there. A finished artifact is a
directory holding `meta.json` (its identity, and the SHA-256 of every data file) and its data; it is
committed by rename, so a half-written one is never mistaken for a finished one.

Checked on read: a finished artifact's files are hashed and compared with what was recorded at commit,
and a saved chunk carries a digest of its own arrays, bound to its artifact and index. A damaged entry is
named by its path, moved to `quarantine/` and made again, except paid answers (a remote suspect's),
which cost queries: those stop that suspect with an error until `trainprove store verify --repair`.

Safe to share: one process builds an artifact at a time, holding an advisory lock (`flock`, released by
the kernel when its holder dies, kill -9 included) on `locks/<kind>/<key>.lock`; another process that
needs it waits, then reads what the first one built. `store.log` has a line per build, wait, quarantine
and sweep. Layout and costs: docs/store.md.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrainproveError

try:
    import fcntl
except ImportError:  # Windows: no claims; concurrent audits still finish but may both build an artifact
    fcntl = None  # type: ignore[assignment]

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
ORPHAN_AGE = 24 * 3600  # without locks (no fcntl), a temporary entry this old is taken for an orphan
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


def _atomic_savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=".npz")
    try:
        set_mode(tmp, fd=fd)  # mkstemp makes it 0600, which the rename would keep
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
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


class Store:
    """The cache under one root directory (default `~/.cache/trainprove`, or `$TRAINPROVE_STORE`)."""

    def __init__(self, root: str | Path, notify: Callable[[str], None] | None = None) -> None:
        # Absolute, so paths into the store stay valid wherever they are written (an audit file the demo
        # writes resolves relative paths against its own folder, not the working directory).
        self.root = Path(root).expanduser().absolute()
        from .checks import folder_path

        folder_path(self.root, "store")  # a file on the way, a symlink loop, a name too long: said now
        self.notify = notify or (lambda message: print(f"store: {message}", file=sys.stderr, flush=True))
        self._swept = False

    # ---- paths ---------------------------------------------------------------------------------------------

    def location(self, kind: str, identity: Mapping[str, Any]) -> Path:
        return self.root / kind / content_key(identity)

    def has(self, kind: str, identity: Mapping[str, Any]) -> bool:
        """Whether a finished entry is there (not checked: reading it checks it)."""
        return (self.location(kind, identity) / META).exists()

    def checkpoints(self, kind: str, identity: Mapping[str, Any]) -> Path:
        """A folder for resumable state of an artifact being built (a trainer's checkpoints): it survives
        a killed build, and `directory()` removes it once the artifact is committed."""
        path = self.root / CHECKPOINTS / kind / content_key(identity)
        try:
            make_folder(path)
        except OSError as exc:
            error = cannot_write(path, exc, STORE_KEPT)
            if error is None:
                raise
            raise error from None
        return path

    def kinds(self) -> list[str]:
        """The kinds of artifact the store holds (its folders, but locks, checkpoints and quarantine)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name not in NOT_KINDS)

    # ---- the log -------------------------------------------------------------------------------------------

    def log(self, event: str, entry: str, **fields: Any) -> None:
        """Append one line to `store.log`: time, process, event (built, waited, quarantined, swept, ...),
        entry (`kind/key`) and fields. One write with O_APPEND, so lines of concurrent processes do not
        interleave."""
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        line = f"{_utc()} pid={os.getpid()} host={socket.gethostname()} {event} {entry}{extra}\n"
        try:
            make_folder(self.root)
            fd = os.open(self.root / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                if store_modes()[2] and os.fstat(fd).st_size == 0:
                    set_mode(self.root / LOG, fd=fd)
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError:  # a read-only store is still readable
            pass

    # ---- claims: one builder per artifact ------------------------------------------------------------------

    @contextmanager
    def _claim(self, kind: str, key: str, wait: bool = True) -> Iterator[bool]:
        """Hold the artifact's lock while building it. `wait=False` yields False at once when another
        process holds it. The lock file is removed before it is released, and a waiter that locked a
        removed file tries again, so two processes never both hold one."""
        if fcntl is None:
            yield True
            return
        if not self._swept and wait:
            self._swept = True
            try:
                self.sweep()
            except OSError:  # a store this process may read but not tidy
                pass
        path = self.root / LOCKS / kind / f"{key}.lock"
        try:
            make_folder(path.parent)
        except OSError as exc:
            raise cannot_write(path.parent, exc, STORE_KEPT) or TrainproveError(
                f"{path.parent}: the store cannot make its folders there ({exc.strerror}); give --store a "
                "folder you can write (or set $TRAINPROVE_STORE)"
            ) from None
        started, told, waited = time.monotonic(), False, False
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except PermissionError:  # another user's lock file: a read-only descriptor locks it as well
                try:
                    fd = os.open(path, os.O_RDONLY)
                except (FileNotFoundError, PermissionError):  # none there, and none this user may make
                    raise NotPermitted(path, "taking the lock on it", self.root) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not wait:
                    yield False
                    return
                waited = True
                if not told and time.monotonic() - started > WAIT_NOTICE:
                    told = True
                    self.notify(
                        f"waiting for {self.holder(kind, key) or 'another process'}, "
                        f"which builds {kind}/{key}"
                    )
                time.sleep(0.2)
                continue
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if waited:
            self.log("waited", f"{kind}/{key}", seconds=round(time.monotonic() - started, 1))
        note = {"pid": os.getpid(), "host": socket.gethostname(), "since": _utc()}
        try:
            if store_modes()[2]:
                set_mode(path, fd=fd)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(note).encode())
        except OSError:  # another user's lock file, opened read-only: held all the same, without the note
            pass
        try:
            yield True
        finally:
            try:
                path.unlink(missing_ok=True)
            except PermissionError:  # a folder of locks this user may not change: the file stays, free
                pass
            os.close(fd)

    def holder(self, kind: str, key: str) -> str | None:
        """Who holds an artifact's lock, as written in it (`pid 123 on host`), or None."""
        try:
            info = json.loads((self.root / LOCKS / kind / f"{key}.lock").read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']} (since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # ---- checking what is read -----------------------------------------------------------------------------

    def _check(self, entry: Path) -> dict[str, Any]:
        """The meta of a finished entry whose files match what was recorded at commit; `_Damage` if not;
        `NotPermitted` where this user may not read it (that is no damage). An entry of an older store (no
        hashes) has them recorded now ("adopted")."""
        try:
            return self._check_files(entry)
        except PermissionError as exc:
            raise NotPermitted(Path(exc.filename or entry), "reading it", self.root) from None

    def _check_files(self, entry: Path) -> dict[str, Any]:
        try:
            text = (entry / META).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _Damage("meta.json is missing") from None
        except PermissionError:
            raise NotPermitted(entry / META, "reading it", self.root) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _Damage(f"meta.json cannot be read ({exc})") from None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError:
            raise _Damage(
                "meta.json is empty" if not text.strip() else "meta.json is not valid JSON"
            ) from None
        if not isinstance(meta, dict):
            raise _Damage("meta.json is not a JSON object")
        if "trainprove_store" not in meta:
            return self._adopt(entry, meta)
        if meta.get("key") != entry.name:
            raise _Damage(f"meta.json belongs to entry {meta.get('key')!r}, not to this one")
        files = meta.get("files")
        if not isinstance(files, dict) or not files:
            raise _Damage("meta.json records no file hashes")
        for name, record in files.items():
            path = entry / name
            if not path.is_file():
                raise _Damage(f"{name} is missing")
            if path.stat().st_size != record.get("size"):
                raise _Damage(f"{name} has {path.stat().st_size} bytes, {record.get('size')} were committed")
            try:
                digest = file_sha256(path)
            except PermissionError:
                raise NotPermitted(path, "reading it", self.root) from None
            if digest != record.get("sha256"):
                raise _Damage(f"{name}: its SHA-256 differs from the one recorded at commit")
        return meta

    def _adopt(self, entry: Path, identity: dict[str, Any]) -> dict[str, Any]:
        """Record hashes for an entry an older trainprove wrote (its meta.json is the bare identity)."""
        if content_key(identity) != entry.name:
            raise _Damage("meta.json (an older store's) describes another entry")
        files = _data_files(entry)
        if not files:
            raise _Damage("the entry holds no data files")
        if DATA in files:
            arrays = _read_npz(files[DATA])
            rows = len(next(iter(arrays.values()))) if arrays else 0
        else:
            rows = None
        meta = self._meta(entry.name, identity, files, rows, paid=False)
        try:
            _atomic_write_text(entry / META, json.dumps(meta, indent=2, sort_keys=True, default=str))
            self.log("adopted", f"{entry.parent.name}/{entry.name}")
        except OSError:
            pass
        return meta

    @staticmethod
    def _meta(
        key: str, identity: Mapping[str, Any], files: Mapping[str, Path], rows: int | None, paid: bool
    ) -> dict[str, Any]:
        return {
            "trainprove_store": FORMAT,
            "key": key,
            "identity": dict(identity),
            "files": {
                name: {"sha256": file_sha256(p), "size": p.stat().st_size} for name, p in files.items()
            },
            "rows": rows,
            "paid": paid,
            "created": _utc(),
        }

    def _finished(self, kind: str, final: Path, paid: bool, repair: bool) -> dict[str, Any] | None:
        """The checked meta of a finished entry; None when there is none. A damaged one raises
        `DamagedEntry` for paid answers; else, where `repair` (the caller holds the claim), it is
        quarantined, and None returned: the caller builds it again."""
        if not final.exists():
            return None
        try:
            meta = self._check(final)
        except _Damage as damage:
            self._damaged(kind, final, str(damage), paid, repair)
            return None
        try:
            os.utime(final / META)  # last use, for `trainprove store gc --unused-days`
        except OSError:
            pass
        return meta

    def _damaged(self, kind: str, path: Path, reason: str, paid: bool, repair: bool) -> None:
        if paid:
            raise DamagedEntry(
                f"the store entry {path} holds paid answers and is damaged ({reason}). Asking the suspect "
                f"again costs queries, so it is not done without your consent: run `trainprove store verify "
                f"--repair --store {self.root}` to quarantine it, and the next audit asks again for what "
                "is missing.",
                path,
            )
        if repair:
            try:
                moved = self.quarantine(kind, path, reason)
            except OSError as exc:
                raise DamagedEntry(
                    f"the store entry {path} is damaged ({reason}) and could not be moved to the quarantine "
                    f"({exc}); remove it, and the next audit makes it again.",
                    path,
                ) from None
            self.notify(f"{path} is damaged ({reason}); moved to {moved}; making it again")

    def quarantine(self, kind: str, path: Path, reason: str) -> Path:
        """Move a damaged entry (or saved chunk) to `quarantine/`, with a REASON.txt; return where."""
        name = path.name if path.is_dir() else f"{path.parent.name}-{path.name}"  # a chunk: with its folder
        target = self.root / QUARANTINE / f"{time.strftime('%Y%m%dT%H%M%S')}-{kind}-{name}-{os.getpid()}"
        quarantine = self.root / QUARANTINE
        if quarantine.exists() and not quarantine.is_dir():
            raise TrainproveError(
                f"{quarantine}: is a file, where the store keeps damaged entries (a folder); move it away "
                f"and run again. {path} (damaged: {reason}) was left where it is."
            )
        make_folder(target)
        os.replace(path, target / path.name)
        (target / "REASON.txt").write_text(f"{path}\n{reason}\n", encoding="utf-8")
        self.log("quarantined", f"{kind}/{path.name}", reason=json.dumps(reason), to=target.name)
        return target / path.name

    def _part(self, path: Path, key: str, index: int) -> dict[str, np.ndarray]:
        """A saved chunk's arrays, checked against the digest it carries; `_Damage` if it does not match."""
        arrays = _read_npz(path)
        digest = arrays.pop(PART_DIGEST, None)
        if digest is not None and str(digest) != arrays_sha256(arrays, key, index):
            raise _Damage(f"{path.name}: its digest does not match its arrays (or it belongs elsewhere)")
        return arrays

    # ---- building ------------------------------------------------------------------------------------------

    def _commit(
        self,
        final: Path,
        identity: Mapping[str, Any],
        fill: Callable[[Path], None],
        rows: int | None = None,
        paid: bool = False,
    ) -> Path:
        """Build a directory with `fill(tmp)`, record its files' hashes in meta.json, rename it into place."""
        try:
            make_folder(final.parent)
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".building-{final.name}-{os.getpid()}-"))
        except OSError as exc:
            error = cannot_write(final.parent, exc, STORE_KEPT)
            if error is None:
                raise
            raise error from None
        try:
            set_mode(tmp, folder=True)  # mkdtemp makes it 0700, which the rename would keep
            fill(tmp)
            if store_modes()[2]:
                for made in tmp.rglob("*"):
                    set_mode(made, folder=made.is_dir())
            meta = self._meta(final.name, identity, _data_files(tmp), rows, paid)
            _atomic_write_text(tmp / META, json.dumps(meta, indent=2, sort_keys=True, default=str))
            if final.exists():  # another process finished first (only without claims); keep theirs
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            error = None if isinstance(exc, TrainproveError) else cannot_write(final, exc, STORE_KEPT)
            if error is None:
                raise
            raise error from None
        return final

    def finished(self, kind: str, identity: Mapping[str, Any]) -> Path | None:
        """The checked directory of a finished entry, or None (missing, or damaged: then `directory()`
        quarantines and rebuilds it)."""
        final = self.location(kind, identity)
        return final if self._finished(kind, final, paid=False, repair=False) is not None else None

    def directory(self, kind: str, identity: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
        """The finished, checked directory for `identity`, built by `build(tmp_dir)` if it is not there
        (or was damaged). The artifact's checkpoints folder is removed once it is committed."""
        final = self.location(kind, identity)
        if self._finished(kind, final, paid=False, repair=False) is not None:
            return final
        with self._claim(kind, final.name):
            if self._finished(kind, final, paid=False, repair=True) is None:
                started = time.monotonic()
                self._commit(final, identity, build)
                self.log("built", f"{kind}/{final.name}", seconds=round(time.monotonic() - started, 1))
            shutil.rmtree(self.root / CHECKPOINTS / kind / final.name, ignore_errors=True)
        return final

    def chunked(
        self,
        kind: str,
        identity: Mapping[str, Any],
        chunks: Sequence[Any],
        run: Callable[[Sequence[Any]], Iterator[tuple[int, dict[str, np.ndarray]]]],
        paid: bool = False,
    ) -> dict[str, np.ndarray]:
        """Arrays made chunk by chunk and concatenated in chunk order.

        `chunks` lists the work items; `run(pending_indices)` must yield `(index, arrays)` for each pending
        chunk (in any order). Each chunk is saved as it arrives, so an interrupted call resumes with only
        the chunks that were missing. When all are there, they are merged into one file. `paid`: the
        arrays are answers that cost queries, which a damaged entry does not silently ask again.
        """
        final = self.location(kind, identity)
        key = final.name
        if (arrays := self._read_finished(kind, final, paid, repair=False)) is not None:
            return arrays
        with self._claim(kind, key):
            if (arrays := self._read_finished(kind, final, paid, repair=True)) is not None:
                return arrays  # another process made it while this one waited
            started = time.monotonic()
            partial = final.parent / f"{key}.partial-{len(chunks)}"
            while True:
                pending = [i for i in range(len(chunks)) if not (partial / f"{i:06d}.npz").exists()]
                if pending:
                    saved = 0
                    for index, arrays in run(pending):
                        digest = np.array(arrays_sha256(arrays, key, index))
                        where = partial / f"{index:06d}.npz"
                        try:
                            _atomic_savez(where, {**arrays, PART_DIGEST: digest})
                        except OSError as exc:
                            error = cannot_write(where, exc, STORE_KEPT)
                            if error is None:
                                raise
                            raise error from None
                        saved += 1
                    if not saved:
                        raise TrainproveError(
                            f"{kind}/{key}: the work returned none of {len(pending)} chunks"
                        )
                    continue
                parts = []
                for i in range(len(chunks)):
                    path = partial / f"{i:06d}.npz"
                    try:
                        parts.append(self._part(path, key, i))
                    except _Damage as damage:
                        self._damaged(kind, path, str(damage), paid, repair=True)
                if len(parts) < len(chunks):
                    continue  # the damaged chunks were quarantined: made again
                merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
                rows = len(next(iter(merged.values()))) if merged else 0
                self._commit(
                    final, identity, lambda tmp, merged=merged: _atomic_savez(tmp / DATA, merged), rows, paid
                )
                shutil.rmtree(partial, ignore_errors=True)
                self.log("built", f"{kind}/{key}", rows=rows, seconds=round(time.monotonic() - started, 1))
                return merged

    def _read_finished(
        self, kind: str, final: Path, paid: bool, repair: bool
    ) -> dict[str, np.ndarray] | None:
        if self._finished(kind, final, paid, repair) is None:
            return None
        try:
            return _read_npz(final / DATA)
        except _Damage as damage:  # hashes match but it does not load: it was committed so
            self._damaged(kind, final, str(damage), paid, repair)
            return None

    def cached_chunks(self, kind: str, identity: Mapping[str, Any], n_chunks: int) -> list[int]:
        """Indices of the chunks of an unfinished artifact that are already saved."""
        partial = self.location(kind, identity).parent / f"{content_key(identity)}.partial-{n_chunks}"
        return [i for i in range(n_chunks) if (partial / f"{i:06d}.npz").exists()]

    # ---- verify and sweep ----------------------------------------------------------------------------------

    def entries(self) -> Iterator[tuple[str, Path]]:
        """Every finished entry (kind, path) and every folder of saved chunks, in a stable order."""
        for kind in self.kinds():
            for path in sorted((self.root / kind).iterdir()):
                if path.is_dir() and not path.name.startswith("."):
                    yield kind, path

    def verify(self, repair: bool = False) -> tuple[int, list[Problem]]:
        """Check every entry and saved chunk; return how many were checked and the damaged ones. With
        `repair`, each damaged one is quarantined (under its claim; one being built is left alone), so
        the next audit that needs it makes it again (paid answers: asks again)."""
        checked, problems = 0, []
        for kind, path in self.entries():
            key, _, n_chunks = path.name.partition(".partial-")
            found: list[tuple[Path, str]] = []
            meta: dict[str, Any] = {}
            if n_chunks:
                for part in sorted(path.glob("[0-9]*.npz")):
                    checked += 1
                    try:
                        self._part(part, key, int(part.stem))
                    except (_Damage, ValueError) as damage:
                        found.append((part, str(damage)))
                    except NotPermitted as denied:
                        problems.append(Problem(part, kind, "permission denied", None, denied=str(denied)))
            else:
                checked += 1
                try:
                    meta = self._check(path)
                    if (path / DATA).exists() or meta.get("rows") is not None:
                        _read_npz(path / DATA)
                except _Damage as damage:
                    found.append((path, str(damage)))
                    meta = self._readable_meta(path)
                except NotPermitted as denied:
                    problems.append(Problem(path, kind, "permission denied", None, denied=str(denied)))
                    continue
            for bad, reason in found:
                paid = bool(meta["paid"]) if "paid" in meta else (None if kind == "answers" else False)
                problem = Problem(bad, kind, reason, paid, meta.get("rows"))
                if repair:
                    try:
                        with self._claim(kind, key, wait=False) as ours:
                            if not ours:
                                problem.busy = self.holder(kind, key) or "another process"
                            elif bad.exists():
                                problem.quarantined = self.quarantine(kind, bad, reason)
                    except (PermissionError, CannotWrite) as exc:
                        where = exc.path if isinstance(exc, CannotWrite) else Path(exc.filename or bad)
                        problem.denied = not_permitted_message(
                            where, "moving it to the quarantine", self.root
                        )
                    except NotPermitted as exc:
                        problem.denied = str(exc)
                problems.append(problem)
        return checked, problems

    @staticmethod
    def _readable_meta(path: Path) -> dict[str, Any]:
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
            return meta if isinstance(meta, dict) else {}
        except (OSError, ValueError):
            return {}

    def sweep(self, dry_run: bool = False) -> list[Path]:
        """Remove what killed builds left: `.building-*` folders and `.tmp-*` files whose builder is dead
        (its claim is free), chunk folders and checkpoints of artifacts that are committed, and lock files
        nobody holds. Cheap (a listing per kind); run when a process first builds in the store, and by
        `trainprove store gc`. Returns what was (or, with `dry_run`, would be) removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed

        def orphan(kind: str, key: str, path: Path) -> None:
            try:
                if fcntl is None and time.time() - path.stat().st_mtime < ORPHAN_AGE:
                    return
                with self._claim(kind, key, wait=False) as free:
                    if free and path.exists():
                        if not dry_run:
                            shutil.rmtree(path) if path.is_dir() else path.unlink()
                            self.log("swept", f"{kind}/{key}", path=path.relative_to(self.root))
                        removed.append(path)
            except OSError:  # gone meanwhile, or not ours to remove (a store shared between users)
                pass

        try:
            for kind in self.kinds():
                for path in list((self.root / kind).iterdir()):
                    name = path.name
                    if name.startswith(".building-"):
                        orphan(kind, name[len(".building-") :].split("-")[0], path)
                    elif ".partial-" in name and path.is_dir():
                        key = name.partition(".partial-")[0]
                        if (self.root / kind / key / META).exists():
                            orphan(kind, key, path)
                        else:
                            for tmp in list(path.glob(".tmp-*")):
                                orphan(kind, key, tmp)
            for kind_dir in sorted((self.root / CHECKPOINTS).glob("*")):
                for path in list(kind_dir.iterdir()):
                    if (self.root / kind_dir.name / path.name / META).exists():
                        orphan(kind_dir.name, path.name, path)
            for lock in sorted((self.root / LOCKS).glob("*/*.lock")):
                if not dry_run:
                    with self._claim(lock.parent.name, lock.stem, wait=False):
                        pass  # taken and released: a free lock file is removed
        except OSError:  # a folder another process removed meanwhile: the next sweep sees the rest
            pass
        return removed

    def remove_unused(
        self,
        days: float,
        include_paid: bool = False,
        dry_run: bool = False,
        keep_recent: float = RECENT,
        kept: list[Path] | None = None,
    ) -> list[Path]:
        """Remove finished entries not read for `days` days (the time of their last use is their
        meta.json's mtime, which every read touches); paid answers are kept unless `include_paid`, and
        entries read within the last `keep_recent` seconds whatever `days` says (listed in `kept`). One
        being built or read under its claim is left alone."""
        if not math.isfinite(days) or days < 0:
            raise ValueError(f"days must be a finite number of days, 0 or more, got {days!r}")
        removed = []
        now = time.time()
        cutoff = now - days * 86400
        for kind, path in list(self.entries()):
            if ".partial-" in path.name or not (path / META).exists():
                continue
            used = (path / META).stat().st_mtime
            if used >= cutoff:
                continue
            if used >= now - keep_recent:
                if kept is not None:
                    kept.append(path)
                continue
            if self._readable_meta(path).get("paid") and not include_paid:
                continue
            with self._claim(kind, path.name, wait=False) as free:
                if free and path.exists():
                    removed.append(path)
                    if not dry_run:
                        shutil.rmtree(path)
                        self.log("removed", f"{kind}/{path.name}", reason="unused")
        return removed

    def empty_quarantine(self, dry_run: bool = False) -> list[Path]:
        """Remove everything in `quarantine/`."""
        folders = sorted((self.root / QUARANTINE).glob("*")) if (self.root / QUARANTINE).is_dir() else []
        if not dry_run:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
        return folders


def default_store_root() -> Path:
    env = os.environ.get("TRAINPROVE_STORE")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "trainprove"
