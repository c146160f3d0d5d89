"""The typed records that plugins hand to the core, and the small protocols their objects follow.

Registry hooks return *specs* (frozen dataclasses with a name, a factory, a one-line description and the
audit-file keys the plugin owns). Factories build the working objects (a `Generator`, a `SuspectAdapter`, a
`ShadowTrainer`, a `DecisionTest`) from the plugin's validated settings. `KINDS` has one row per kind of
registration (its hook, spec type, audit-file table and titles); everything else derives from it. Nothing
here imports numpy at module level, so the CLI stays fast to start.

Every spec may carry `validate(settings)`, for what one option's bounds or `check` cannot say (a name that
must exist in the plugin's library, a URL, a device, two keys that must agree). The core calls it while the
audit file is loaded, after every key of the table passed its type, bounds and `check`, with the plugin's
settings (defaults filled in), before any work. It raises `ValueError` (or a `TrainproveError`; a
`ConfigError(..., key=NAME)` names the key) with a sentence for the user, and the core prefixes the file
and the table. It must be cheap: it may import the plugin's library to look a name up, but must not
download, load a model or reach the network.

The package, by family: `options` (Option), `makers` (generators, suspect adapters, shadow trainers),
`decisions` (decision tests, evidence, verdicts), `executors` (the seam for distributed engines), `kinds`.
"""

from .decisions import (
    DECISIONS,
    RHO,
    AuditContext,
    Decision,
    DecisionTest,
    DecisionTestSpec,
    Evidence,
    Look,
    Plans,
    ReservesSteps,
    Sequential,
    Verdict,
    Workload,
)
from .executors import (
    WORK_KINDS,
    Executor,
    ExecutorSpec,
    ModelRef,
    Outcome,
    Work,
    WorkKind,
    runs_at_once,
)
from .kinds import (
    KIND,
    KINDS,
    Kind,
    KindName,
)
from .makers import (
    Answers,
    Attaches,
    Closable,
    GenerationRequest,
    Generator,
    GeneratorSpec,
    ImageSet,
    LoadsLazily,
    Metered,
    QueryCost,
    QueryUsage,
    Remarks,
    ShadowTrainer,
    ShadowTrainerSpec,
    SuspectAdapter,
    SuspectAdapterSpec,
)
from .options import (
    REQUIRED,
    Option,
    OptionType,
)

__all__ = [
    "Answers",
    "Attaches",
    "AuditContext",
    "Closable",
    "DECISIONS",
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
    "KIND",
    "KINDS",
    "Kind",
    "KindName",
    "LoadsLazily",
    "Look",
    "Metered",
    "ModelRef",
    "Option",
    "OptionType",
    "Outcome",
    "QueryCost",
    "QueryUsage",
    "REQUIRED",
    "RHO",
    "Remarks",
    "Plans",
    "ReservesSteps",
    "Sequential",
    "Workload",
    "ShadowTrainer",
    "ShadowTrainerSpec",
    "SuspectAdapter",
    "SuspectAdapterSpec",
    "Verdict",
    "WORK_KINDS",
    "Work",
    "WorkKind",
    "runs_at_once",
]
