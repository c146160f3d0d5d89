"""Entry point: registers the TrainProVe decision tests and the `trainprove plan` command.

This module is imported whenever trainprove starts, so it imports nothing heavy: numpy and scipy are loaded
by the factories and the command, when they are actually used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec, Option

COMMON_OPTIONS = (
    Option(
        "alpha",
        "float",
        0.05,
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
        help="inconclusive when the suspect answered less than this fraction of the validation queries",
    ),
    Option(
        "min_shadow_margin",
        "float",
        0.1,
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
    from .evidence import Preconditions

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
