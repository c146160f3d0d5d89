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
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainprove_core import Answers, BudgetExceeded, QueryUsage

USAGE = "usage.log"


class Ledger:
    """Counts, budget and answered requests of one remote suspect."""

    def __init__(self, budget: int | None, label_space: Sequence[str] = ()) -> None:
        self.budget = budget
        self.label_space = list(label_space)  # kept answers index it
        self.usage = QueryUsage()  # this run
        self.earlier = QueryUsage()  # earlier runs, from usage.log
        self.folder: Path | None = None
        self._lock = threading.Lock()

    def attach(self, folder: Path) -> None:
        """Keep the counts and answers in `folder` (the store's place for this suspect), reading what
        earlier runs left there (once: what this run appends is in `usage` already)."""
        if self.folder == folder:
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "answers").mkdir(exist_ok=True)
        earlier = QueryUsage()
        path = folder / USAGE
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                what, _, count = line.partition(" ")
                if what in ("sent", "paid") and count.isdigit():
                    setattr(earlier, what, getattr(earlier, what) + int(count))
        with self._lock:
            self.folder, self.earlier = folder, earlier

    @property
    def sent_total(self) -> int:
        return self.earlier.sent + self.usage.sent

    @property
    def paid_total(self) -> int:
        return self.earlier.paid + self.usage.paid

    def send(self, images: int, url: str) -> None:
        """Count a request of `images` images about to go out, or raise `BudgetExceeded` if it would take
        the images sent over the budget (then it is not sent)."""
        if images == 0:
            return
        with self._lock:
            if self.budget is not None and self.sent_total + images > self.budget:
                raise BudgetExceeded(
                    f"suspect endpoint {url}: the next request ({images} images) would bring the images sent "
                    f"to this suspect to {self.sent_total + images}, over its budget of {self.budget} "
                    f"({self.sent_total} sent over all runs, {self.paid_total} of them answered; "
                    f"{self.usage.sent} in this run). Nothing more was sent; every answer received is "
                    "kept, so raising `budget` goes on where this stopped."
                )
            self.usage.sent += images
            self._log("sent", images)

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
        fd = os.open(self.folder / USAGE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, folder / f"{self.key(images)}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
