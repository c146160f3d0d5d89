"""Entry point: registers the TrainProVe decision tests.

This module is imported whenever trainprove starts, so it imports nothing heavy: scipy is loaded by the
factories, when an audit actually uses a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec, Option

TRAINPROVE_OPTIONS = (
    Option("alpha", "float", 0.05, help="significance level of the Grubbs test"),
    Option(
        "paper_compat",
        "bool",
        False,
        help="reproduce the released code: t quantile at alpha/(2n) and no floor on the batch spread",
    ),
    Option(
        "sd_floor",
        "bool",
        True,
        help="floor the shadow's batch standard deviation at the binomial value (ignored with paper_compat)",
    ),
)


def _trainprove(settings: Mapping[str, Any]):
    from .trainprove import TrainProVeTest

    return TrainProVeTest(settings["alpha"], settings["paper_compat"], settings["sd_floor"])


@hookimpl
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    return [
        DecisionTestSpec(
            "trainprove",
            _trainprove,
            "TrainProVe: one-sided Grubbs test of the suspect's accuracy against the shadow's batches (labels)",
            TRAINPROVE_OPTIONS,
        )
    ]
