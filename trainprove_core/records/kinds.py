"""The kinds of registration, one row each: everything else derives from `KINDS`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .decisions import DecisionTestSpec
from .executors import ExecutorSpec
from .makers import GeneratorSpec, ShadowTrainerSpec, SuspectAdapterSpec

if TYPE_CHECKING:
    pass

# --------------------------------------------------------------------------------------------------------
# The kinds of registration: one row each
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of thing plugins register. Everything that differs between kinds is a field of its row in
    `KINDS`; the loader, the listing, the docs generator and the audit-file tables read it from there.

    `name` is the kind as `PluginSet.get`, `trainprove plugins --json` and error messages spell it; `hook`
    the registry hook that returns its specs; `spec` their record type; `table` the audit-file table that
    selects one by its `use_key` (`many`: an array of tables, `[[suspect]]`); `title` and `singular` name
    it in listings and docs.
    """

    name: str
    hook: str
    spec: type
    table: str
    title: str
    singular: str
    use_key: str = "use"
    many: bool = False

    @property
    def plural(self) -> str:
        return self.title.lower()

    @property
    def selector(self) -> str:
        """The table as an audit file writes it: `[generator]`, `[[suspect]]`."""
        return f"[[{self.table}]]" if self.many else f"[{self.table}]"


KindName = Literal["generator", "suspect", "shadow-trainer", "test", "executor"]

KINDS: tuple[Kind, ...] = (
    Kind("generator", "trainprove_generators", GeneratorSpec, "generator", "Generators", "generator"),
    Kind(
        "suspect",
        "trainprove_suspect_adapters",
        SuspectAdapterSpec,
        "suspect",
        "Suspect adapters",
        "suspect adapter",
        many=True,
    ),
    Kind(
        "shadow-trainer",
        "trainprove_shadow_trainers",
        ShadowTrainerSpec,
        "shadow",
        "Shadow trainers",
        "shadow trainer",
        use_key="trainer",
    ),
    Kind(
        "test",
        "trainprove_decision_tests",
        DecisionTestSpec,
        "test",
        "Decision tests",
        "decision test",
        many=True,
    ),
    Kind("executor", "trainprove_executors", ExecutorSpec, "executor", "Executors", "executor"),
)
"""Every kind of registration, in the order listings show them."""

KIND: dict[str, Kind] = {k.name: k for k in KINDS}
"""`KINDS` by name."""
