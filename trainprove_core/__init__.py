"""trainprove: did this classifier learn from my generator's images? (TrainProVe, CVPR 2025).

What a plugin author needs is importable from here:

    from trainprove_core import hookimpl, GeneratorSpec, Option, InputError

Records, protocols, the task and the errors import nothing heavy, so `import trainprove_core` stays as light
as `trainprove --help` must be. The evidence helpers a decision test shares (`abstain`, `declined`,
`Preconditions`, `batch_accuracies`) need numpy: they load on first use (a module `__getattr__`), never
on import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BudgetExceeded, ConfigError, InputError, PluginError, TrainproveError
from .hookspecs import hookimpl
from .records import (
    DECISIONS,
    KINDS,
    REQUIRED,
    Answers,
    Attaches,
    AuditContext,
    Closable,
    Decision,
    DecisionTest,
    DecisionTestSpec,
    Evidence,
    Executor,
    ExecutorSpec,
    GenerationRequest,
    Generator,
    GeneratorSpec,
    ImageSet,
    LoadsLazily,
    Look,
    Metered,
    ModelRef,
    Option,
    Outcome,
    QueryCost,
    QueryUsage,
    Remarks,
    Sequential,
    ShadowTrainer,
    ShadowTrainerSpec,
    SuspectAdapter,
    SuspectAdapterSpec,
    Verdict,
    Work,
)
from .task import Task

if TYPE_CHECKING:
    from .evidence import Preconditions, abstain, batch_accuracies, declined
    from .executors import ModelCache, execute

__version__ = "0.1.0"

_LAZY = {name: "evidence" for name in ("Preconditions", "abstain", "batch_accuracies", "declined")}
_LAZY.update(execute="executors", ModelCache="executors")
"""Names that import numpy (or run work), and the module of each: loaded when first asked for."""

__all__ = [
    "DECISIONS",
    "KINDS",
    "REQUIRED",
    "Answers",
    "Attaches",
    "AuditContext",
    "BudgetExceeded",
    "Closable",
    "ConfigError",
    "Decision",
    "DecisionTest",
    "DecisionTestSpec",
    "Evidence",
    "Executor",
    "ExecutorSpec",
    "GenerationRequest",
    "Generator",
    "GeneratorSpec",
    "ImageSet",
    "InputError",
    "LoadsLazily",
    "Look",
    "Metered",
    "ModelRef",
    "Option",
    "Outcome",
    "PluginError",
    "QueryCost",
    "QueryUsage",
    "Remarks",
    "Sequential",
    "ShadowTrainer",
    "ShadowTrainerSpec",
    "SuspectAdapter",
    "SuspectAdapterSpec",
    "Task",
    "TrainproveError",
    "Verdict",
    "Work",
    "hookimpl",
    # loaded on first use (numpy):
    "Preconditions",
    "abstain",
    "batch_accuracies",
    "declined",
    "ModelCache",
    "execute",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
