"""trainprove: did this classifier learn from my generator's images? (TrainProVe, CVPR 2025).

What a plugin author needs is importable from here, and plugins' library code imports from nowhere else
in the core (a test checks; `trainprove_core.cli_options` for click options, `trainprove_core.fleet` for a
command built on a fleet, `trainprove_core.testing` in tests):

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
    Plans,
    QueryCost,
    QueryUsage,
    Remarks,
    ReservesSteps,
    Sequential,
    ShadowTrainer,
    ShadowTrainerSpec,
    SuspectAdapter,
    SuspectAdapterSpec,
    Verdict,
    Work,
    Workload,
)
from .task import Task

if TYPE_CHECKING:
    from . import api, progress, rounds, secrets
    from .checks import http_url, not_blank, number, per_channel, torch_device
    from .config import AuditConfig, ImageSetConfig, load_config, validate_table
    from .engine import AuditReport, AuditRun, ReferenceModel, TrainedReference, Workspace
    from .evidence import (
        Preconditions,
        abstain,
        answered,
        answered_batch_sizes,
        batch_accuracies,
        batch_means,
        binomial_sd_floor,
        check_alpha,
        check_fraction,
        declined,
        prediction_entropy,
    )
    from .executors import ModelCache, execute, write_files
    from .identity_cache import cache_directory, check_loaded, file_sha256, read_hashed
    from .plugins import PluginSet
    from .store import (
        NotPermitted,
        Store,
        content_key,
        default_store_root,
        derive_seed,
        make_folder,
        set_mode,
        store_modes,
    )

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(
        (
            "Preconditions",
            "abstain",
            "answered",
            "answered_batch_sizes",
            "batch_accuracies",
            "batch_means",
            "binomial_sd_floor",
            "check_alpha",
            "check_fraction",
            "declined",
            "prediction_entropy",
        ),
        "evidence",
    ),
    **dict.fromkeys(("ModelCache", "execute", "write_files"), "executors"),
    **dict.fromkeys(
        (
            "NotPermitted",
            "Store",
            "content_key",
            "default_store_root",
            "derive_seed",
            "make_folder",
            "set_mode",
            "store_modes",
        ),
        "store",
    ),
    **dict.fromkeys(("AuditConfig", "ImageSetConfig", "load_config", "validate_table"), "config"),
    **dict.fromkeys(("http_url", "not_blank", "number", "per_channel", "torch_device"), "checks"),
    **dict.fromkeys(("cache_directory", "check_loaded", "file_sha256", "read_hashed"), "identity_cache"),
    **dict.fromkeys(("AuditReport", "AuditRun", "ReferenceModel", "TrainedReference", "Workspace"), "engine"),
    "PluginSet": "plugins",
}
"""Names that import numpy (or the engine, or run work), and the module of each: loaded when first used."""

_MODULES = ("api", "progress", "rounds", "secrets", "threads")
"""Modules used as a whole (`progress.step`, `rounds.prefix`, `secrets.redact`, `threads.torch_threads`;
`api.audit`, the Python API of docs/python-api.md, which the package `trainprove` re-exports), loaded
when used."""

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
    "Plans",
    "ReservesSteps",
    "Sequential",
    "Workload",
    "ShadowTrainer",
    "ShadowTrainerSpec",
    "SuspectAdapter",
    "SuspectAdapterSpec",
    "Task",
    "TrainproveError",
    "Verdict",
    "Work",
    "hookimpl",
    # loaded on first use (numpy, the engine):
    "abstain",
    "answered",
    "answered_batch_sizes",
    "AuditConfig",
    "AuditReport",
    "AuditRun",
    "batch_accuracies",
    "batch_means",
    "binomial_sd_floor",
    "cache_directory",
    "check_alpha",
    "check_fraction",
    "check_loaded",
    "content_key",
    "declined",
    "default_store_root",
    "derive_seed",
    "execute",
    "file_sha256",
    "http_url",
    "ImageSetConfig",
    "load_config",
    "make_folder",
    "ModelCache",
    "not_blank",
    "NotPermitted",
    "number",
    "per_channel",
    "PluginSet",
    "Preconditions",
    "prediction_entropy",
    "read_hashed",
    "ReferenceModel",
    "set_mode",
    "Store",
    "store_modes",
    "torch_device",
    "TrainedReference",
    "validate_table",
    "Workspace",
    "write_files",
    "api",
    "progress",
    "rounds",
    "secrets",
    "threads",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
