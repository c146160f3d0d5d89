"""Entry point: registers the `calibrated` decision test. Imports nothing heavy (numpy and scipy load in
the factory, when an audit uses the rule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import DecisionTestSpec, Option, hookimpl

OPTIONS = (
    Option(
        "references",
        "list[str]",
        help="reference sources the defender controls and the suspect's trainer may not have used: real "
        "data it holds, other generators (a generator plugin name, or a label given in reference_settings); "
        "at least two",
    ),
    Option(
        "reference_settings",
        "table",
        None,
        help="per reference label, its generator table: `use` (default: the label) and the plugin's keys",
    ),
    Option(
        "recipes",
        "table",
        None,
        help="per recipe name, the shadow trainer's keys that differ from [shadow]'s, plus `share` (the "
        "fraction of the generator's images in a guilty reference's training set, default 1), "
        "`per_class_factor` (its size relative to the shadow set), `weak` (true: the guilty model is "
        "under-trained, one of the weak guilty sub-population) and `innocent` (false: train the guilty "
        "model only); default: nine recipes varying seed, architecture, epochs, crops, data size and share, "
        "four under-trained (docs/decision-tests.md)",
    ),
    Option(
        "alpha",
        "float",
        0.01,
        min=1e-6,
        max=0.5,
        help="bound on the false-accusation rate: accuse only when an innocent model would score this high "
        "with probability at most alpha",
    ),
    Option(
        "beta",
        "float",
        0.05,
        min=1e-6,
        max=0.5,
        help="bound on the false-clearing rate: clear only when a model trained on the generator would "
        "score this low with probability at most beta",
    ),
    Option(
        "reference_per_class",
        "int",
        None,
        min=1,
        max=1_000_000,
        help="validation images per class of each reference source (default: [validation] per_class / "
        "number of references, at least 10); the suspect answers these too",
    ),
    Option(
        "min_accuracy",
        "float",
        0.5,
        min=0.0,
        max=1.0,
        help="inconclusive when the suspect scores below this on every image set (it has not learned the "
        "task)",
    ),
    Option(
        "accuse_by",
        "str",
        "relative",
        choices=("relative", "absolute"),
        help="the statistic compared with the innocent references: relative = log(references' error rate "
        "/ the generator's), which a model strong everywhere does not fool; absolute = -log(error rate on "
        "the generator's images)",
    ),
    Option(
        "clear_by",
        "str",
        "absolute",
        choices=("relative", "absolute"),
        help="the statistic compared with the guilty references: absolute sees a mixture that includes the "
        "generator's images (strong on them and elsewhere), which the relative error puts among the "
        "innocent",
    ),
    Option(
        "min_answered",
        "float",
        0.95,
        min=0.0,
        max=1.0,
        help="inconclusive when the suspect answered less than this fraction of the validation queries",
    ),
)


def _validate(settings: Mapping[str, Any]) -> None:
    """Each recipe is a table, and the rule's own keys in it are numbers that make sense (the trainer's
    keys are checked by the trainer when the references are built)."""
    for name, recipe in (settings["recipes"] or {}).items():
        if not isinstance(recipe, Mapping):
            raise ValueError(
                f"key 'recipes': recipe {name!r} must be a table of trainer keys, got {recipe!r}"
            )
        for key in ("weak", "innocent"):
            if not isinstance(recipe.get(key, True), bool):
                raise ValueError(f"key 'recipes': recipe {name!r}: `{key}` must be true or false")
        for key, high in (("share", 1), ("per_class_factor", 100)):
            value = recipe.get(key, 1.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
                raise ValueError(
                    f"key 'recipes': recipe {name!r}: `{key}` must be a number above 0 and at most {high}, "
                    f"got {value!r}"
                )
    for label, table in (settings["reference_settings"] or {}).items():
        if not isinstance(table, Mapping):
            raise ValueError(
                f"key 'reference_settings': {label!r} must be a table of generator keys, got {table!r}"
            )


def _factory(settings: Mapping[str, Any]):
    from .rule import CalibratedTest

    return CalibratedTest(**settings)


@hookimpl
def trainprove_decision_tests() -> list[DecisionTestSpec]:
    return [
        DecisionTestSpec(
            "calibrated",
            _factory,
            "relative error against innocent and guilty reference models; alpha bounds false "
            "accusation, beta false clearing, inconclusive otherwise",
            OPTIONS,
            validate=_validate,
        )
    ]
