"""Every hook trainprove calls, grouped by family. One marker ("trainprove"), one prefix (`trainprove_`).

Registry hooks take no arguments and return a list of spec records (see `records.py`); the plugin manager
calls each implementation on its own so it knows which distribution registered what, and two plugins
claiming one name is an error naming both. Lifecycle hooks observe an audit; their return values are
ignored. No hook here is `firstresult`.

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
    """


# ---- suspect adapters -----------------------------------------------------------------------------------


@hookspec
def trainprove_suspect_adapters() -> list[SuspectAdapterSpec]:
    """Return the suspect adapters this plugin offers, as `SuspectAdapterSpec` records.

    An adapter is how the audit asks a suspect model for labels (and, where it can, probabilities): a
    local checkpoint, an exported model file, a remote API. `[[suspect]] use = "..."` selects one. All
    implementations are called.
    """


# ---- shadow trainers ------------------------------------------------------------------------------------


@hookspec
def trainprove_shadow_trainers() -> list[ShadowTrainerSpec]:
    """Return the shadow-model trainers this plugin offers, as `ShadowTrainerSpec` records.

    The shadow model is trained on the defender's shadow set and is the reference the suspect is compared
    with. `[shadow] trainer = "..."` selects one. All implementations are called.
    """


# ---- decision tests -------------------------------------------------------------------------------------


@hookspec
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    """Return the decision tests this plugin offers, as `DecisionTestSpec` records.

    A decision test turns evidence (the validation set, the shadow's and the suspect's answers) into a
    verdict. `[[test]] use = "..."` selects one. All implementations are called.
    """


# ---- executors ------------------------------------------------------------------------------------------


@hookspec
def trainprove_executors() -> list[ExecutorSpec]:
    """Return the executors this plugin offers, as `ExecutorSpec` records.

    An executor runs independent chunks of generation and querying; the built-in `local` one runs them in
    this process. `[executor] use = "..."` selects one (a distributed engine such as Ray plugs in here).
    All implementations are called.
    """


# ---- command line ---------------------------------------------------------------------------------------


@hookspec
def trainprove_commands(cli: click.Group) -> None:
    """Add subcommands to the `trainprove` command line (`@cli.command()` inside the hook).

    Called once when the CLI starts; keep the module light, import heavy libraries inside the command.
    """


# ---- lifecycle ------------------------------------------------------------------------------------------


@hookspec
def trainprove_before_audit(config: AuditConfig, out_dir: Path) -> None:
    """Called once before an audit does any work, with the validated audit and the output directory.
    Return value ignored."""


@hookspec
def trainprove_after_generate(role: str, image_set: ImageSet) -> None:
    """Called when an image set is ready (made or taken from the cache). `role` is "shadow",
    "validation" or a name a decision test chose; `image_set` is the `ImageSet`. Return value ignored."""


@hookspec
def trainprove_after_query(suspect: str, answers: Answers, queries: int) -> None:
    """Called when a model has answered the whole validation set. `suspect` is the suspect's name
    ("shadow" for the shadow model), `queries` the number of images actually sent this run (0 when
    every answer came from the cache). Return value ignored."""


@hookspec
def trainprove_after_verdict(verdict: Verdict) -> None:
    """Called for every verdict as soon as it is reached. Return value ignored."""


@hookspec
def trainprove_after_audit(report: dict, out_dir: Path) -> None:
    """Called once the report is written, with the report's JSON document and the output directory.
    Return value ignored."""
