"""What generators, suspect adapters and shadow trainers register, build and hand back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from .options import Option

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from ..task import Task

# --------------------------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make: the prompt, the class it should show, and the seed that fixes it."""

    prompt: str
    class_index: int
    class_name: str
    seed: int


@runtime_checkable
class Generator(Protocol):
    """The defender's model (or any image source) turned into a function of requests.

    `identity` is a JSON-serialisable mapping that changes whenever the images would change (model id and
    revision or weight hash, sampler settings, library versions); the store keys image sets on it.
    `generate` returns uint8 RGB images, shape (N, H, W, 3), at the generator's native resolution; image
    i must depend only on request i (its seed), never on the batch it shared, so a set can be made in
    chunks and resumed.
    """

    identity: Mapping[str, Any]
    native_size: int
    batch_size: int

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray: ...


@dataclass(frozen=True)
class GeneratorSpec:
    """A generator a plugin offers. `factory(settings)` builds it from the validated `[generator]` table
    (or `[negative_control]` table)."""

    name: str
    factory: Callable[[Mapping[str, Any]], Generator]
    description: str
    options: tuple[Option, ...] = ()
    classes: tuple[str, ...] | None = None
    """The class names the generator is conditioned on, in index order, for a generator that is
    conditioned on `GenerationRequest.class_index` rather than on the prompt (None: any task). An audit
    whose `[task] classes` differ from them, in names or order, is refused when it is loaded."""
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


@dataclass
class ImageSet:
    """Images (uint8, N x S x S x 3 at the task's size) with their classes, and the key they are stored
    under. `role` says what the set is for ("shadow", "validation", or a name a decision test chose);
    `identity` is everything that made it (its `key` is that identity's content hash)."""

    role: str
    key: str
    images: np.ndarray
    labels: np.ndarray
    identity: dict[str, Any]

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------------------------------------
# Suspect adapters
# --------------------------------------------------------------------------------------------------------


@dataclass
class Answers:
    """What a model said about a set of images.

    `labels[i]` is the predicted class of image i as an index into the *task's* class list (the core maps
    adapter label spaces to the task's before anyone else sees answers), or -1 where the model did not
    answer image i (a refused request): decision tests compute over answered images only
    (`trainprove_core.evidence.answered`) and abstain when too few were answered. `probabilities` is (N, C) or
    None for a label-only model.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class QueryCost:
    """How asking costs. `budget` is the most images the audit may send (None: unlimited)."""

    remote: bool = False
    budget: int | None = None


@dataclass
class QueryUsage:
    """What asking a remote suspect cost, in images: `sent` counts every image of every request that went
    out (retries included), `paid` those of the requests the server answered (whether or not the answer
    was used: one that came too late was still paid for). An adapter that keeps one as `usage` has it
    reported as the suspect's `queries_sent` and `queries_paid`, whatever the outcome."""

    sent: int = 0
    paid: int = 0


@runtime_checkable
class SuspectAdapter(Protocol):
    """How to ask a suspect model.

    `label_names` is the suspect's label space in its own index order (None: it uses the task's order).
    `returns` says whether `predict` fills `probabilities`. `predict` takes uint8 RGB images (N, H, W, 3)
    at the task's size and returns `Answers` whose labels index `label_names` (or the task's classes);
    labels may also be returned as class-name strings (dtype object/str), which the core maps by name.
    `identity` keys the answer cache: it must change when the answers could change, and must never
    contain a credential. An adapter that holds resources (a connection pool) may define `close()`
    (`Closable`); the audit calls it when it is done with the suspect. An adapter that loads its model
    lazily (its attributes known without the weights) may define `load()` (`LoadsLazily`): the audit calls
    it before the first query,
    and up front (before any image is made) for each suspect whose answers are not all cached, so a model
    that cannot serve fails early; a suspect whose answers are all cached is never loaded.
    A remote adapter may keep a `QueryUsage` as `usage` (`Metered`: reported as what it sent and what was
    paid), and define `attach(folder)` (`Attaches`): the core calls it before
    the first query with a folder of the store that is this adapter's own (keyed by its identity), where
    it may keep what must outlive the run (counts against its budget, answers of a chunk that failed).
    It may also keep `remarks` (`Remarks`), sentences about this run's answers (how many were
    unparseable, say), reported as the suspect's `remarks`; the report counts every suspect's `unanswered`
    images itself.
    """

    identity: Mapping[str, Any]
    label_names: Sequence[str] | None
    returns: Literal["labels", "probabilities"]
    batch_size: int
    cost: QueryCost

    def predict(self, images: np.ndarray) -> Answers: ...


# The optional members of adapters, trainers' models and executors, each a protocol the core checks with
# `isinstance` (never a `getattr` probe): what a plugin may define, visible in one place.


@runtime_checkable
class Closable(Protocol):
    """Holds resources (a connection pool, a server it started, an executor's workers): `close()` releases
    them, and is safe to call twice. The core calls it when it is done with the object."""

    def close(self) -> None: ...


@runtime_checkable
class LoadsLazily(Protocol):
    """Knows its identity and label space without its weights: `load()` loads them (called once, before
    the first query, or up front to fail before any work)."""

    def load(self) -> None: ...


@runtime_checkable
class Attaches(Protocol):
    """Keeps what must outlive the run (counts against a budget, answers of a chunk that failed) in
    `folder`, a folder of the store that is this adapter's own: `attach(folder)` is called before the
    first query."""

    def attach(self, folder: Path) -> None: ...


@runtime_checkable
class Metered(Protocol):
    """Counts its own queries: `usage` (None: not counted) is reported as what it sent and what was paid."""

    usage: QueryUsage | None


@runtime_checkable
class Remarks(Protocol):
    """Has sentences about this run's answers (how many were unparseable, say), reported as the suspect's
    `remarks`."""

    remarks: Sequence[str] | None


@dataclass(frozen=True)
class SuspectAdapterSpec:
    """A suspect adapter a plugin offers. `factory(settings, task)` builds it from a `[[suspect]]` table."""

    name: str
    factory: Callable[[Mapping[str, Any], Task], SuspectAdapter]
    description: str
    options: tuple[Option, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""


# --------------------------------------------------------------------------------------------------------
# Shadow trainers
# --------------------------------------------------------------------------------------------------------


@runtime_checkable
class ShadowTrainer(Protocol):
    """Trains the defender's shadow model and opens it for querying.

    `train` writes everything it needs under `out_dir` (an empty directory the store commits atomically
    when `train` returns). `open` turns such a directory into a `SuspectAdapter`, so the shadow model is
    queried exactly like a suspect.
    """

    identity: Mapping[str, Any]

    def train(self, images: np.ndarray, labels: np.ndarray, task: Task, out_dir: Path) -> None: ...

    def open(self, model_dir: Path, task: Task) -> SuspectAdapter: ...


@dataclass(frozen=True)
class ShadowTrainerSpec:
    """A shadow trainer a plugin offers. `factory(settings)` builds it from the `[shadow]` table."""

    name: str
    factory: Callable[[Mapping[str, Any]], ShadowTrainer]
    description: str
    options: tuple[Option, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    """`validate(settings)` checks the plugin's settings as a whole while the audit file is loaded (see the
    module docstring); None: the options' own bounds and checks are enough."""
