"""Entry point: registers the baseline decision tests.

Imported whenever trainprove starts, so it imports nothing heavy: scipy and scikit-learn load in the
factories, when an audit uses a baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import DecisionTestSpec, Option, hookimpl

MIN_ANSWERED = Option(
    "min_answered",
    "float",
    0.95,
    min=0,
    max=1,
    help="inconclusive when the suspect answered less than this fraction of the queries",
)

THRESHOLD_OPTIONS = (
    Option(
        "threshold",
        "float",
        0.9,
        min=0,
        max=1,
        help="accuracy on the validation set at or above which a suspect counts as trained on the generator",
    ),
    Option("relative", "bool", False, help="read `threshold` as a fraction of the shadow model's accuracy"),
    MIN_ANSWERED,
)
WELCH_OPTIONS = (
    Option(
        "alpha",
        "float",
        0.05,
        min=0,
        max=0.5,
        exclusive_min=True,
        help="significance level; which error it bounds depends on `null`",
    ),
    Option(
        "margin",
        "float",
        0.02,
        min=0,
        max=1,
        help="how far below the shadow's mean batch accuracy a suspect may be and still count as trained",
    ),
    Option(
        "null",
        "str",
        "trained",
        choices=("trained", "not-trained"),
        help="the hypothesis alpha protects: 'trained' bounds false clearing (TrainProVe's direction), "
        "'not-trained' bounds false accusation of suspects at least `margin` below the shadow",
    ),
    Option("sd_floor", "bool", True, help="floor each batch standard deviation at its binomial value"),
    Option(
        "min_batches",
        "int",
        5,
        min=3,
        max=100_000,
        help="inconclusive with fewer validation batches than this",
    ),
    MIN_ANSWERED,
    Option(
        "min_shadow_margin",
        "float",
        0.1,
        min=0,
        max=1,
        help="inconclusive when the shadow's validation accuracy is within this of chance",
    ),
)
META_OPTIONS = (
    Option(
        "sources",
        "list[str]",
        help="the other sources whose images train the negative shadow models: generator names, e.g. "
        '["digits-vae", "digits-real"], or labels of tables in `source_settings`',
    ),
    Option(
        "source_settings",
        "table",
        {},
        help="a table per source label with its generator settings, and `use` = the generator plugin when "
        "the label is not its name (e.g. a second model of the same plugin); default: the plugin's defaults",
    ),
    Option(
        "shadows_per_source",
        "int",
        3,
        min=2,
        max=100,
        help="shadow models per source, the defender's generator included",
    ),
    Option(
        "min_loo_accuracy",
        "float",
        0.75,
        min=0,
        max=1,
        help="inconclusive when the classifier's leave-one-out accuracy on its own shadows is below this",
    ),
    MIN_ANSWERED,
)
RANDOM_OPTIONS = (
    Option(
        "p_trained",
        "float",
        0.5,
        min=0,
        max=1,
        help="probability of calling a suspect trained on the generator",
    ),
    Option(
        "seed",
        "int",
        0,
        max=2**32 - 1,
        help="seed; a suspect's coin depends only on it and the suspect's name",
    ),
)


def _threshold(settings: Mapping[str, Any]):
    from .threshold import AccuracyThresholdTest

    return AccuracyThresholdTest(settings["threshold"], settings["relative"], settings["min_answered"])


def _welch(settings: Mapping[str, Any]):
    from trainprove_core import Preconditions

    from .welch import WelchTest

    preconditions = Preconditions(
        settings["min_batches"], settings["min_answered"], settings["min_shadow_margin"]
    )
    return WelchTest(
        settings["alpha"], settings["margin"], settings["null"], settings["sd_floor"], preconditions
    )


def _meta(settings: Mapping[str, Any]):
    from .meta import MetaClassifierTest

    return MetaClassifierTest(
        settings["sources"],
        settings["source_settings"],
        settings["shadows_per_source"],
        settings["min_loo_accuracy"],
        settings["min_answered"],
    )


def _random(settings: Mapping[str, Any]):
    from .random_guess import RandomGuessTest

    return RandomGuessTest(settings["p_trained"], settings["seed"])


@hookimpl
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    return [
        DecisionTestSpec(
            "accuracy-threshold",
            _threshold,
            "baseline: trained iff validation accuracy reaches a fixed threshold (labels)",
            THRESHOLD_OPTIONS,
        ),
        DecisionTestSpec(
            "welch",
            _welch,
            "baseline: one-sided Welch t-test of batch accuracies against the shadow's, with a "
            "margin (labels)",
            WELCH_OPTIONS,
        ),
        DecisionTestSpec(
            "meta-classifier",
            _meta,
            "baseline: classifier over the answers of shadow models trained on the generator "
            "and on other sources (Synthetic Artifact Auditing style; labels)",
            META_OPTIONS,
        ),
        DecisionTestSpec(
            "random-guess", _random, "baseline: a seeded coin flip per suspect, the floor", RANDOM_OPTIONS
        ),
    ]
