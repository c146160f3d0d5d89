"""The store's upkeep: `verify` (check every entry), `sweep` (remove what killed builds left), `remove_unused`
and `empty_quarantine` (`trainprove store gc`). A part of `trainprove_core.store.Store` (its base class)."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .store_files import (
    CHECKPOINTS,
    DATA,
    LOCKS,
    META,
    QUARANTINE,
    RECENT,
    CannotWrite,
    NotPermitted,
    Problem,
    _Damage,
    _read_npz,
    not_permitted_message,
)


class Upkeep:
    """`verify`, `sweep`, `remove_unused`, `empty_quarantine` of a `Store` (which gives `root`, `kinds`,
    `_check`, `_part`, `_claim`, `holder`, `quarantine` and `log`)."""

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
