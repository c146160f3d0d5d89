"""A content-addressed cache of everything expensive: image sets, trained models, suspect answers.

An artifact's key is the SHA-256 of the canonical JSON of everything that produced it (its *identity*).
Work is saved in chunks, each written to a temporary file and renamed into place, so a run killed at any
point (kill -9 included) keeps every finished chunk and resumes from there. A finished artifact is a
directory holding `meta.json` (its identity) and its data; directories are committed by rename, so a
half-written one is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

META = "meta.json"
DATA = "data.npz"


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


def _atomic_savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    for attempt in range(3):  # another process may remove the folder between mkdir and mkstemp
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class Store:
    """The cache under one root directory (default `~/.cache/trainprove`, or `$TRAINPROVE_STORE`)."""

    def __init__(self, root: str | Path) -> None:
        # Absolute, so paths into the store stay valid wherever they are written (an audit file the demo
        # writes resolves relative paths against its own folder, not the working directory).
        self.root = Path(root).expanduser().absolute()

    def location(self, kind: str, identity: Mapping[str, Any]) -> Path:
        return self.root / kind / content_key(identity)

    def has(self, kind: str, identity: Mapping[str, Any]) -> bool:
        return (self.location(kind, identity) / META).exists()

    def _commit(self, final: Path, identity: Mapping[str, Any], fill: Callable[[Path], None]) -> Path:
        """Build a directory with `fill(tmp)`, write its meta, and rename it into place."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".building-{final.name}-"))
        try:
            fill(tmp)
            _atomic_write_text(tmp / META, json.dumps(identity, indent=2, sort_keys=True, default=str))
            if final.exists():  # another process finished first; keep theirs
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def directory(self, kind: str, identity: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
        """The finished directory for `identity`, built by `build(tmp_dir)` if it is not there yet."""
        final = self.location(kind, identity)
        if (final / META).exists():
            return final
        return self._commit(final, identity, build)

    def chunked(
        self,
        kind: str,
        identity: Mapping[str, Any],
        chunks: Sequence[Any],
        run: Callable[[Sequence[Any]], Iterator[tuple[int, dict[str, np.ndarray]]]],
    ) -> dict[str, np.ndarray]:
        """Arrays made chunk by chunk and concatenated in chunk order.

        `chunks` lists the work items; `run(pending_indices)` must yield `(index, arrays)` for each pending
        chunk (in any order). Each chunk is saved as it arrives, so an interrupted call resumes with only
        the chunks that were missing. When all are there, they are merged into one file.
        """
        final = self.location(kind, identity)
        partial = final.parent / f"{final.name}.partial-{len(chunks)}"
        # A loop, because another process may work on the same artifact (two audits on one store): it may
        # finish and remove the parts while this one still reads or writes them. Then this one takes the
        # finished artifact, or makes again what is missing. A part that cannot be read is made again.
        while True:
            if (final / META).exists():
                return load_npz(final / DATA)
            pending = [i for i in range(len(chunks)) if not (partial / f"{i:06d}.npz").exists()]
            if pending:
                for index, arrays in run(pending):
                    try:
                        _atomic_savez(partial / f"{index:06d}.npz", arrays)
                    except FileNotFoundError:  # the parts' folder went away under us: look again
                        break
                    if (final / META).exists():
                        break
                continue
            parts = []
            for i in range(len(chunks)):
                path = partial / f"{i:06d}.npz"
                try:
                    parts.append(load_npz(path))
                except FileNotFoundError:
                    break
                except (ValueError, OSError, zipfile.BadZipFile):
                    path.unlink(missing_ok=True)  # a damaged part: made again on the next pass
                    break
            if len(parts) < len(chunks):
                continue
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
            self._commit(final, identity, lambda tmp, merged=merged: _atomic_savez(tmp / DATA, merged))
            shutil.rmtree(partial, ignore_errors=True)
            return merged

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
