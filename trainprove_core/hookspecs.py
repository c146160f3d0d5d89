"""Every hook trainprove calls, grouped by family. One marker ("trainprove"), one prefix (`trainprove_`).

Registry hooks take no arguments and return a list of spec records (see `records.py`; `records.KINDS` has
one row per registry hook); the plugin manager calls each implementation on its own so it knows which
distribution registered what, and two plugins claiming one name is an error naming both. Lifecycle hooks
observe an audit; their return values are ignored. No hook here is `firstresult`.

What happens when a hook raises: a registry hook or `trainprove_commands` raising (or a registry hook
returning something else than its specs) unregisters the plugin, which `trainprove plugins` lists as failed
(`TRAINPROVE_STRICT_PLUGINS=1`: an error); a lifecycle observer raising is recorded in the report's
`errors` and the audit goes on.

Plugin modules are imported to answer `trainprove --help`: keep heavy imports (torch, diffusers, ...)
inside factories, never at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from .config import AuditConfig
    from .records import (
        Answers,
        DecisionTestSpec,
        ExecutorSpec,
        GeneratorSpec,
        ImageSet,
        ShadowTrainerSpec,
        SuspectAdapterSpec,
        Verdict,
    )

PROJECT = "trainprove"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---- generators -----------------------------------------------------------------------------------------


@hookspec
def trainprove_generators() -> list[GeneratorSpec]:
    """Return the generators this plugin offers, as `GeneratorSpec` records.

    A generator is the defender's text-to-image model (or any class-conditional image source). Its name is
    what an audit file's `[generator] use = "..."` selects. All implementations are called.

    Returns: a list of `GeneratorSpec` records (an empty list: nothing to offer).
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`; everything else loads
    (`TRAINPROVE_STRICT_PLUGINS=1`: an error)."""


# ---- suspect adapters -----------------------------------------------------------------------------------


@hookspec
def trainprove_suspect_adapters() -> list[SuspectAdapterSpec]:
    """Return the suspect adapters this plugin offers, as `SuspectAdapterSpec` records.

    An adapter is how the audit asks a suspect model for labels (and, where it can, probabilities): a
    local checkpoint, an exported model file, a remote API. `[[suspect]] use = "..."` selects one. All
    implementations are called.

    Returns: a list of `SuspectAdapterSpec` records (an empty list: nothing to offer).
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`; everything else loads
    (`TRAINPROVE_STRICT_PLUGINS=1`: an error)."""


# ---- shadow trainers ------------------------------------------------------------------------------------


@hookspec
def trainprove_shadow_trainers() -> list[ShadowTrainerSpec]:
    """Return the shadow-model trainers this plugin offers, as `ShadowTrainerSpec` records.

    The shadow model is trained on the defender's shadow set and is the reference the suspect is compared
    with. `[shadow] trainer = "..."` selects one. All implementations are called.

    Returns: a list of `ShadowTrainerSpec` records (an empty list: nothing to offer).
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`; everything else loads
    (`TRAINPROVE_STRICT_PLUGINS=1`: an error)."""


# ---- decision tests -------------------------------------------------------------------------------------


@hookspec
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    """Return the decision tests this plugin offers, as `DecisionTestSpec` records.

    A decision test turns evidence (the validation set, the shadow's and the suspect's answers) into a
    verdict. `[[test]] use = "..."` selects one. All implementations are called.

    Returns: a list of `DecisionTestSpec` records (an empty list: nothing to offer).
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`; everything else loads
    (`TRAINPROVE_STRICT_PLUGINS=1`: an error)."""


# ---- executors ------------------------------------------------------------------------------------------


@hookspec
def trainprove_executors() -> list[ExecutorSpec]:
    """Return the executors this plugin offers, as `ExecutorSpec` records.

    An executor runs independent chunks of generation and querying; the built-in `local` one runs them in
    this process. `[executor] use = "..."` selects one (a distributed engine such as Ray plugs in here).
    All implementations are called.

    Returns: a list of `ExecutorSpec` records (an empty list: nothing to offer).
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`; everything else loads
    (`TRAINPROVE_STRICT_PLUGINS=1`: an error)."""


# ---- command line ---------------------------------------------------------------------------------------


@hookspec
def trainprove_commands(cli: click.Group) -> None:
    """Add subcommands to the `trainprove` command line (`@cli.command()` inside the hook).

    Called once when the CLI starts, and again on a scratch group by `trainprove plugins` and the docs
    generator to learn which commands a plugin adds: keep the module light, import heavy libraries inside
    the command, and do nothing else here.

    cli: the `trainprove` click group (a scratch group when listing).
    Returns: nothing; a return value is ignored.
    Raises: the plugin is unregistered and listed as failed by `trainprove plugins`, and the commands it
    added before raising are removed; `trainprove` starts without it (`TRAINPROVE_STRICT_PLUGINS=1`: an
    error)."""


# ---- lifecycle ------------------------------------------------------------------------------------------


@hookspec
def trainprove_before_audit(config: AuditConfig, out_dir: Path) -> None:
    """Called once before an audit does any work.

    config: the validated audit (`config.AuditConfig`; `public_document()` is the file with secrets
    masked).
    out_dir: the directory the report goes to (it exists).
    Returns: nothing; a return value is ignored.
    Raises: recorded in the report's `errors` (naming the plugin and the hook); the audit goes on."""


@hookspec
def trainprove_after_generate(role: str, image_set: ImageSet) -> None:
    """Called when an image set is ready, made now or taken from the cache.

    role: "shadow", "validation", or a name a decision test or control chose.
    image_set: the `records.ImageSet` (images, labels, and `key`, its content hash).
    Returns: nothing; a return value is ignored.
    Raises: recorded in the report's `errors` (naming the plugin and the hook); the audit goes on."""


@hookspec
def trainprove_after_query(suspect: str, answers: Answers, queries: int) -> None:
    """Called when a model has answered the whole validation set.

    suspect: the suspect's name ("shadow" for the shadow model).
    answers: its `Answers`, in the task's label space.
    queries: the images actually sent in this run (0 when every answer came from the cache).
    Returns: nothing; a return value is ignored.
    Raises: recorded in the report's `errors` (naming the plugin and the hook); the audit goes on."""


@hookspec
def trainprove_after_verdict(verdict: Verdict) -> None:
    """Called for every verdict as soon as it is reached.

    verdict: the `Verdict` of one decision test on one suspect (or control).
    Returns: nothing; a return value is ignored.
    Raises: recorded in the report's `errors` (naming the plugin and the hook); the audit goes on."""


@hookspec
def trainprove_after_audit(report: dict, out_dir: Path) -> None:
    """Called once the report is written.

    report: the JSON document of report.json.
    out_dir: the directory holding the report.
    Returns: nothing; a return value is ignored.
    Raises: recorded in the report's `errors` (naming the plugin and the hook); the audit goes on."""
