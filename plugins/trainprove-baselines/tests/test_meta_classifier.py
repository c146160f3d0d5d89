"""The meta-classifier against real models, through the core's Workspace (cached sets, models, answers).

The image source and the models are small but real (`trainprove_core.glyphs`): strokes drawn with numpy,
each source in its own house style, and logistic regressions on pixels trained and loaded back like any
shadow model. Nothing here fakes a model's output.
"""

from __future__ import annotations

from typing import Any

import pytest
from trainprove_baselines import plugin
from trainprove_baselines.meta import MetaClassifierTest

from trainprove_core.audit import AuditRun
from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.errors import ConfigError
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.records import Evidence
from trainprove_core.store import Store
from trainprove_core.testing import isolated_plugins

SOURCES = ["moved", "textured"]
SOURCE_SETTINGS = {"moved": {"use": "glyphs", "style": 0.6}, "textured": {"use": "glyphs", "style": 1.0}}
AUDIT = {
    "seed": 3,
    "task": {"classes": ["hbar", "vbar", "diag", "ring"], "image_size": 8},
    "generator": {"use": "glyphs", "style": 0.0},
    "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "pixel-logistic"},
    "validation": {"prompt": "a photo of a {label}", "per_class": 60, "batch_size": 20},
    "suspect": [{"name": "unused", "use": "pixel-logistic", "model_dir": "nowhere"}],
    "test": [{"use": "meta-classifier", "sources": SOURCES, "source_settings": SOURCE_SETTINGS}],
}


@pytest.fixture(scope="module")
def audit(tmp_path_factory) -> dict[str, Any]:
    plugins = isolated_plugins((GlyphPlugin(), "glyphs"), (plugin, "trainprove-baselines"))
    config = config_from_dict(AUDIT, plugins)
    run = AuditRun(config, plugins, Store(tmp_path_factory.mktemp("store")), show_progress=False)
    ws = run.workspace

    def evidence(style: float, seed: int, with_run: bool = True) -> Evidence:
        source = ws.generator(ws.plugin_table("generator", "glyphs", {"style": style}))
        model, _ = ws.shadow_model(
            config.trainer, ws.image_set("suspect", source, ImageSetConfig("{label}", 40, seed))
        )
        answers, _ = run.suspect_answers(f"suspect {style} {seed}", model)
        ev = run.evidence(f"s{style}", answers)
        if not with_run:
            ev.run = None
        return ev

    return {"ws": ws, "evidence": evidence, "config": config, "plugins": plugins}


def test_meta_classifier_tells_same_source_suspects_from_others(audit):
    table = audit["config"].tests[0].test  # built from the audit file, as run_audit does
    test = audit["plugins"].get("test", table.use).spec.factory(table.settings)
    same = test.decide(audit["evidence"](0.0, 101))
    other = test.decide(audit["evidence"](1.0, 102))
    assert same.decision == "trained-on-generator", same.explanation
    assert other.decision == "not-trained-on-generator", other.explanation
    assert same.details["score"] > 0.5 > other.details["score"]
    assert same.n == 9 and same.details["loo_accuracy"] >= 0.75 and same.details["with_probabilities"]
    assert "3 shadow models on glyphs and 6 on moved, textured" in same.explanation


def test_meta_classifier_fits_once_per_audit_and_reuses_cached_models(audit):
    test = MetaClassifierTest(SOURCES, SOURCE_SETTINGS, shadows_per_source=2)
    ws = audit["ws"]
    test.decide(audit["evidence"](0.0, 103))
    models = len(list((ws.store.root / "models").iterdir()))
    test.decide(audit["evidence"](0.6, 104))
    assert len(test._fitted) == 1
    assert len(list((ws.store.root / "models").iterdir())) == models + 1  # only the new suspect was trained


def test_meta_classifier_abstains_without_a_workspace_or_a_signal(audit):
    test = MetaClassifierTest(SOURCES, SOURCE_SETTINGS)
    v = test.decide(audit["evidence"](0.0, 101, with_run=False))
    assert v.decision == "inconclusive" and "Evidence.run" in v.explanation
    # A "source" that draws the very images of the defender's style (same style, other seed offsets):
    # the classifier cannot tell its shadows apart, and says so instead of guessing.
    lookalike = MetaClassifierTest(
        ["twin"], {"twin": {"use": "glyphs", "style": 0.0001}}, shadows_per_source=3
    )
    v = lookalike.decide(audit["evidence"](0.0, 101))
    assert v.decision == "inconclusive" and "leave-one-out accuracy only" in v.explanation


def test_meta_classifier_refuses_the_audits_own_generator_as_a_source(audit):
    test = MetaClassifierTest(["twin"], {"twin": {"use": "glyphs", "style": 0.0}})
    with pytest.raises(ConfigError, match="'twin' is the audit's own generator"):
        test.decide(audit["evidence"](0.0, 101))
