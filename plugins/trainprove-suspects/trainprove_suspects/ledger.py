"""What asking a paid API has cost, and what it answered, kept so that nothing is paid for twice.

The core caches answers per chunk of `batch_size` images; a chunk whose requests fail half-way is not
saved. The ledger keeps, per request, what the server answered (so a re-run asks only the requests that
got no answer), and counts in images:

- *sent*: every image of every request that went out, retries included;
- *paid*: the images of every request the server answered (its 2xx status arrived), even when the answer
  came too late or did not fit: the server did the work, and an API bills it.

The budget bounds *sent*, over all runs: since a server cannot answer what it was never sent, it can
never have answered more than the budget, whatever timeouts and retries did. The core hands the adapter
a folder of the store (`attach`), keyed by the adapter's identity; there the ledger appends its counts to
`usage.log` (one `sent N` or `paid N` line per request, appends of a few bytes, safe from two processes)
and writes each answered request to `answers/<images hash>.npz`. Without a folder it counts for this
process only.

The budget holds across processes sharing the store (two audits of one suspect at once): checking a
request against the budget and recording it as sent is one step under an advisory lock (`flock` on
`usage.lock`, released by the kernel when its holder dies), which first reads what the other processes
appended to `usage.log` since this one last looked. The request goes out after the lock is released:
it is counted as sent before it is sent, so no two processes can both spend the last of a budget.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trainprove_core import (
    Answers,
    BudgetExceeded,
    NotPermitted,
    QueryUsage,
    make_folder,
    set_mode,
    store_modes,
)

try:
    import fcntl
except ImportError:  # Windows: the budget holds within one process only
    fcntl = None  # type: ignore[assignment]

USAGE = "usage.log"
LOCK = "usage.lock"


class Ledger:
    """Counts, budget and answered requests of one remote suspect."""

    def __init__(self, budget: int | None, label_space: Sequence[str] = ()) -> None:
        self.budget = budget
        self.label_space = list(label_space)  # kept answers index it
        self.usage = QueryUsage()  # this run
        self.earlier = QueryUsage()  # earlier runs, from usage.log
        self.folder: Path | None = None
        self._lock = threading.RLock()
        self._read = 0  # bytes of usage.log read so far
        self._totals: dict[str, int] = {}  # what usage.log says, every process's lines

    def attach(self, folder: Path) -> None:
        """Keep the counts and answers in `folder` (the store's place for this suspect), reading what
        earlier runs left there (and, at each request, what other processes appended since)."""
        if self.folder == folder:
            return
        make_folder(folder / "answers")
        with self._lock:
            self.folder, self.earlier = folder, QueryUsage()
            self._read, self._totals = 0, {}
            self._catch_up()

    def _catch_up(self) -> None:
        """Read the lines of usage.log appended since the last look (by any process, this one included)
        into `_totals`, and set `earlier` to what is not this run's (under `_lock`)."""
        if self.folder is None:
            return
        try:
            with open(self.folder / USAGE, "rb") as f:
                f.seek(self._read)
                new = f.read()
        except FileNotFoundError:
            new = b""
        except PermissionError:
            raise NotPermitted(self.folder / USAGE, "reading what was sent to this suspect") from None
        complete = new[: new.rfind(b"\n") + 1]  # a line being appended right now is read next time
        self._read += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            what, _, count = line.partition(" ")
            if count.isdigit():
                self._totals[what] = self._totals.get(what, 0) + int(count)
        self.earlier.sent = self._totals.get("sent", 0) - self.usage.sent
        self.earlier.paid = self._totals.get("paid", 0) - self.usage.paid

    @contextmanager
    def _shared(self) -> Iterator[None]:
        """Hold the folder's lock (every process and thread with a ledger on it) and catch up with what
        the others recorded; inside `_lock`."""
        if self.folder is None or fcntl is None:
            yield
            return
        try:
            fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: a read-only descriptor locks it as well
            try:
                fd = os.open(self.folder / LOCK, os.O_RDONLY)
            except (FileNotFoundError, PermissionError):  # none there, and none this user may make
                raise NotPermitted(self.folder / LOCK, "taking the budget's lock on it") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._catch_up()
            yield
        finally:
            os.close(fd)  # releases the lock

    @property
    def sent_total(self) -> int:
        return self.earlier.sent + self.usage.sent

    @property
    def paid_total(self) -> int:
        return self.earlier.paid + self.usage.paid

    def send(self, images: int, url: str) -> None:
        """Count a request of `images` images about to go out, or raise `BudgetExceeded` if it would take
        the images sent (by every process using this folder, over all runs) over the budget (then it is
        not sent)."""
        if images == 0:
            return
        with self._lock, self._shared():
            self._check(images, url)
            if self.budget is not None and self.sent_total + images > self.budget:
                raise BudgetExceeded(
                    f"suspect endpoint {url}: the next request ({images} images) would bring the images sent "
                    f"to this suspect to {self.sent_total + images}, over its budget of {self.budget} "
                    f"({self.sent_total} sent over all runs, {self.paid_total} of them answered; "
                    f"{self.usage.sent} in this run). Nothing more was sent; every answer received is "
                    "kept, so raising `budget` goes on where this stopped."
                )
            self._log("sent", images)  # recorded before it is counted: what cannot be recorded is not sent
            self.usage.sent += images

    def _check(self, images: int, url: str) -> None:
        """A subclass's own budget check, made under the same lock (raise `BudgetExceeded`)."""

    def paid(self, images: int) -> None:
        """Count a request the server answered."""
        if images == 0:
            return
        with self._lock:
            self.usage.paid += images
            self._log("paid", images)

    def _log(self, what: str, images: int) -> None:
        if self.folder is None:
            return
        try:
            fd = os.open(self.folder / USAGE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except PermissionError:
            raise NotPermitted(self.folder / USAGE, f"recording {what} {images} images in it") from None
        try:
            if store_modes()[2] and os.fstat(fd).st_size == 0:
                set_mode(self.folder / USAGE, fd=fd)
            os.write(fd, f"{what} {images}\n".encode())
        finally:
            os.close(fd)

    # ---- answered requests -------------------------------------------------------------------------------

    def key(self, images: np.ndarray) -> str:
        """What identifies a request within this suspect's folder: the images it holds (and the label
        space its answers index)."""
        digest = hashlib.sha256(repr((images.shape, images.dtype.str, self.label_space)).encode())
        digest.update(np.ascontiguousarray(images).data)
        return digest.hexdigest()[:32]

    def recall(self, images: np.ndarray) -> Answers | None:
        """The answers an earlier request with these images got, if one was kept."""
        if self.folder is None:
            return None
        path = self.folder / "answers" / f"{self.key(images)}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                labels = data["labels"]
                probabilities = data["probabilities"] if "probabilities" in data.files else None
        except (OSError, ValueError, KeyError):  # not there, or damaged: ask again
            return None
        if len(labels) != len(images) or (probabilities is not None and len(probabilities) != len(images)):
            return None
        return Answers(labels, probabilities)

    def keep(self, images: np.ndarray, answers: Answers) -> None:
        """Keep a request's answers (atomically: a half-written file is never read back)."""
        if self.folder is None:
            return
        arrays = {"labels": np.asarray(answers.labels)}
        if answers.probabilities is not None:
            arrays["probabilities"] = np.asarray(answers.probabilities)
        folder = self.folder / "answers"
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        except PermissionError:
            raise NotPermitted(folder, "keeping an answer in it") from None
        try:
            set_mode(tmp, fd=fd)  # mkstemp makes it 0600, which the rename would keep
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, folder / f"{self.key(images)}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
