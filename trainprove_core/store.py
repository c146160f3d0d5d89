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

Safe to share: one process builds an artifact at a time, holding an advisory lock (`flock` through
`filelock.lock_descriptor`, `LockFileEx` on Windows; released by the kernel when its holder dies, kill -9
included) on `locks/<kind>/<key>.lock`; another process that
needs it waits, then reads what the first one built. `store.log` has a line per build, wait, quarantine
and sweep. Layout and costs: docs/store.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrainproveError
from .store_files import (  # noqa: F401  (the store's public names, and what its tests and benches use)
    CHECKPOINTS,
    DATA,
    FORMAT,
    LOCKS,
    LOG,
    META,
    MODE_VARIABLE,
    NOT_KINDS,
    PART_DIGEST,
    QUARANTINE,
    RECENT,
    STORE_KEPT,
    WAIT_NOTICE,
    CannotWrite,
    DamagedEntry,
    NotPermitted,
    Problem,
    _atomic_savez,
    _atomic_write_text,
    _Damage,
    _data_files,
    _read_npz,
    _utc,
    arrays_sha256,
    cannot_write,
    canonical_json,
    content_key,
    derive_seed,
    file_sha256,
    load_npz,
    make_folder,
    not_permitted_message,
    set_mode,
    store_modes,
)
from .store_upkeep import Upkeep


class Store(Upkeep):
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
        import filelock  # here: its import is 60 ms of a start-up that may build nothing

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
                locked = filelock.lock_descriptor(fd, blocking=False)  # flock; LockFileEx on Windows
            except BaseException:
                os.close(fd)
                raise
            if not locked:
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
        the chunks that were missing. When all are there, they are merged into one file (the chunks this
        call made are merged from memory, not read back). `paid`: the arrays are answers that cost queries,
        which a damaged entry does not silently ask again; their files are fsynced before they are renamed
        into place. Other chunks are not (a fsync costs 10 ms, as much as a chunk of a small model's
        answers): a power loss may leave such a file empty, which its digest catches when it is read, and
        it is made again.
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
            made: dict[int, dict[str, np.ndarray]] = {}  # the chunks made by this call: merged as they are
            while True:
                pending = [i for i in range(len(chunks)) if not (partial / f"{i:06d}.npz").exists()]
                if pending:
                    saved = 0
                    for index, arrays in run(pending):
                        digest = np.array(arrays_sha256(arrays, key, index))
                        where = partial / f"{index:06d}.npz"
                        try:
                            _atomic_savez(where, {**arrays, PART_DIGEST: digest}, durable=paid)
                        except OSError as exc:
                            error = cannot_write(where, exc, STORE_KEPT)
                            if error is None:
                                raise
                            raise error from None
                        made[index] = {name: np.asarray(a) for name, a in arrays.items()}
                        saved += 1
                    if not saved:
                        raise TrainproveError(
                            f"{kind}/{key}: the work returned none of {len(pending)} chunks"
                        )
                    continue
                parts = []
                for i in range(len(chunks)):
                    if i in made:  # saved by this call: not read back
                        parts.append(made[i])
                        continue
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
                    final,
                    identity,
                    lambda tmp, merged=merged: _atomic_savez(tmp / DATA, merged, durable=paid),
                    rows,
                    paid,
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


def default_store_root() -> Path:
    env = os.environ.get("TRAINPROVE_STORE")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "trainprove"
