"""Entry point: registers the TrainProVe decision tests and the `trainprove plan` command.

This module is imported whenever trainprove starts, so it imports nothing heavy: numpy and scipy are loaded
by the factories and the command, when they are actually used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from trainprove_core import DecisionTestSpec, Option, hookimpl, number
from trainprove_core.cli_options import progress_option, store_option

COMMON_OPTIONS = (
    Option(
        "alpha",
        "float",
        0.05,
        min=0,
        max=0.5,
        exclusive_min=True,
        help="significance level of the Grubbs test: it bounds the rate of clearing a suspect that did "
        "train on the generator, not the rate of accusing one that did not; with too few batches "
        "(classes, for -sim) to keep it, the test is inconclusive (8 at alpha = 0.05)",
    ),
    Option(
        "paper_compat",
        "bool",
        False,
        help="reproduce the released code: t quantile at alpha/(2n) (and, for `trainprove`, no floor on "
        "the batch spread)",
    ),
    Option(
        "min_answered",
        "float",
        0.95,
        min=0,
        max=1,
        help="inconclusive when the suspect answered less than this fraction of the validation queries",
    ),
    Option(
        "min_shadow_margin",
        "float",
        0.1,
        min=0,
        max=1,
        help="inconclusive when the shadow's validation accuracy is within this of chance",
    ),
)
TRAINPROVE_OPTIONS = COMMON_OPTIONS + (
    Option(
        "sd_floor",
        "bool",
        True,
        help="floor the shadow's batch standard deviation at the binomial value (ignored with paper_compat)",
    ),
)
ENT_OPTIONS = COMMON_OPTIONS
SIM_OPTIONS = COMMON_OPTIONS


def _preconditions(settings: Mapping[str, Any]):
    from trainprove_core import Preconditions

    return Preconditions(
        min_answered=settings["min_answered"],
        min_shadow_margin=settings["min_shadow_margin"],
    )


def _trainprove(settings: Mapping[str, Any]):
    from .trainprove import TrainProVeTest

    return TrainProVeTest(
        settings["alpha"], settings["paper_compat"], settings["sd_floor"], _preconditions(settings)
    )


def _entropy(settings: Mapping[str, Any]):
    from .variants import EntropyTest

    return EntropyTest(settings["alpha"], settings["paper_compat"], _preconditions(settings))


def _similarity(settings: Mapping[str, Any]):
    from .variants import SimilarityTest

    return SimilarityTest(settings["alpha"], settings["paper_compat"], _preconditions(settings))


@hookimpl
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    return [
        DecisionTestSpec(
            "trainprove",
            _trainprove,
            "TrainProVe: one-sided Grubbs test of the suspect's accuracy against the shadow's batches "
            "(labels)",
            TRAINPROVE_OPTIONS,
        ),
        DecisionTestSpec(
            "trainprove-ent",
            _entropy,
            "TrainProVe-Ent: Grubbs test, high side, of the per-batch mean prediction entropy "
            "(probabilities)",
            ENT_OPTIONS,
        ),
        DecisionTestSpec(
            "trainprove-sim",
            _similarity,
            "TrainProVe-Sim: Grubbs test, low side, of the per-class output cosine similarity "
            "(probabilities)",
            SIM_OPTIONS,
        ),
    ]


@hookimpl
def trainprove_commands(cli: click.Group) -> None:
    @cli.command()
    @click.argument("audit_file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--drop",
        type=number(float, min=0, max=1, min_open=True, max_open=True),
        default=0.05,
        show_default=True,
        help="Accuracy drop below the shadow's that must be detected (0.05 = 5 points).",
    )
    @click.option(
        "--power",
        type=number(float, min=0, max=1, min_open=True, max_open=True),
        default=0.8,
        show_default=True,
        help="Probability of calling such a suspect 'not trained'.",
    )
    @click.option(
        "--alpha",
        type=number(float, min=0, max=1, min_open=True, max_open=True),
        default=None,
        help="Significance level [default: the audit's trainprove test's, else 0.05].",
    )
    @store_option
    @click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
    @progress_option
    @click.pass_context
    def plan(
        ctx: click.Context,
        audit_file: Path,
        drop: float,
        power: float,
        alpha: float | None,
        store_dir: Path | None,
        as_json: bool,
        progress: bool,
    ) -> None:
        """How many validation images (= queries per suspect) AUDIT_FILE needs to detect an accuracy drop.

        Makes the audit's shadow and validation sets and its shadow model (or finds them in the cache) and
        asks the shadow only, never a suspect; from the shadow's batch spread it works out the TrainProVe
        designs (batches x batch size) that call a suspect DROP less accurate "not trained" with POWER at
        ALPHA, and what the audit as written achieves. Run it before paying for queries.
        """
        import json

        from trainprove_core import InputError, Store, default_store_root, load_config

        from .plan import audit_spread, format_plan
        from .plan import plan as make_plan

        plugins = ctx.obj["plugins"]
        config = load_config(audit_file, plugins)
        grubbs = next((t.test.settings for t in config.tests if t.test.use == "trainprove"), {})
        alpha = alpha if alpha is not None else grubbs.get("alpha", 0.05)
        for name, value in (("--drop", drop), ("--power", power), ("--alpha", alpha)):
            if not 0 < value < 1:
                raise InputError(f"{name} must be between 0 and 1, got {value}")
        spread, workload = audit_spread(config, plugins, Store(store_dir or default_store_root()), progress)
        result = make_plan(
            spread,
            drop,
            power,
            alpha,
            current_batches=spread.batches,
            paper_compat=grubbs.get("paper_compat", False),
        )
        chance = 1.0 / config.task.num_classes
        result["chance"] = chance
        result["workload"] = workload
        click.echo(json.dumps(result, indent=2) if as_json else format_plan(result))
