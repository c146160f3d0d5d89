"""What the calibrated rule promises, checked: both error rates over many seeded trials under its own model,
and the rule end to end through the core's AuditRun with real (tiny) models.

Each rate check draws T seeded trials and fails when the one-sided 99.9% Clopper-Pearson lower bound on the
observed rate is above the claim, so a rule that keeps its claim fails with probability at most 0.1%.
"""

from __future__ import annotations

import numpy as np
import pytest
from trainprove_calibrated import plugin
from trainprove_calibrated.rule import CalibratedTest, Population, decide

from trainprove_core.audit import AuditRun, run_audit
from trainprove_core.config import ImageSetConfig, config_from_dict
from trainprove_core.errors import ConfigError
from trainprove_core.evidence import clopper_pearson_lower
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.store import Store
from trainprove_core.testing import isolated_plugins

CONFIDENCE = 0.999


def assert_rate_at_most(k: int, trials: int, claim: float, what: str) -> None:
    lower = clopper_pearson_lower(k, trials, CONFIDENCE)
    assert lower <= claim, f"{what}: {k}/{trials}; the 99.9% lower bound {lower:.4f} exceeds {claim}"


@pytest.mark.parametrize(("n_innocent", "n_guilty"), [(8, 4), (20, 5), (40, 10)])
@pytest.mark.parametrize(("alpha", "beta"), [(0.01, 0.05), (0.05, 0.05)])
@pytest.mark.parametrize("gap", [0.0, 2.0, 6.0])
def test_both_error_rates_hold_under_the_rules_own_model(n_innocent, n_guilty, alpha, beta, gap):
    """References and suspect drawn from the same normal populations (innocent at 0, guilty at `gap`, unit
    spread): an innocent suspect is accused at most alpha of the time, a guilty one cleared at most beta,
    whatever the overlap of the populations."""
    rng = np.random.default_rng([n_innocent, n_guilty, int(alpha * 100), int(gap)])
    trials = 3000
    accused = cleared = 0
    for _ in range(trials):
        innocent = Population(rng.normal(0.0, 1.0, n_innocent), 1e-9)
        guilty = Population(rng.normal(gap, 1.0, n_guilty), 1e-9)
        accused += decide(rng.normal(0.0, 1.0), innocent, guilty, alpha, beta)[0] == "trained-on-generator"
        cleared += (
            decide(rng.normal(gap, 1.0), innocent, guilty, alpha, beta)[0] == "not-trained-on-generator"
        )
    assert_rate_at_most(accused, trials, alpha, f"false accusation, gap {gap}")
    assert_rate_at_most(cleared, trials, beta, f"false clearing, gap {gap}")


@pytest.mark.parametrize("n_pure", [4, 8])
@pytest.mark.parametrize("drawn_from", ["strong", "pure"])
def test_the_intersection_union_clearing_keeps_beta_for_either_guilty_sub_population(n_pure, drawn_from):
    """Guilty references in two sub-populations, each compared on its own statistic: strong ones (high
    absolute error) and models trained on the generator's images alone, under-trained ones included
    (whatever their absolute error, their gap is near 0: the generator's images are their best set). A
    guilty suspect drawn from *either* is cleared at most beta of the time: p_guilty is the larger of the
    two sub-populations' tails (an intersection-union test, no correction needed); an innocent suspect
    (low absolute error, its best set elsewhere) is still cleared."""
    rng = np.random.default_rng([n_pure, drawn_from == "pure"])
    beta, trials = 0.05, 2000
    cleared = innocent_cleared = 0
    # (absolute, gap) means and spreads of each kind of model
    kinds = {
        "strong": ((3.5, 0.6), (-0.2, 0.3)),
        "pure": ((1.5, 1.2), (0.0, 0.15)),
        "innocent": ((0.5, 0.3), (-1.5, 0.4)),
    }

    def draw(kind, n=None):
        (ma, sa), (mg, sg) = kinds[kind]
        return rng.normal(ma, sa, n), rng.normal(mg, sg, n)

    for _ in range(trials):
        innocent = Population(rng.normal(-0.6, 0.2, 20), 1e-9, np.repeat(np.arange(5), 4))
        strong = Population(draw("strong", 5)[0], 1e-9)
        pure = Population(draw("pure", n_pure)[1], 1e-9)
        for kind in (drawn_from, "innocent"):
            absolute, gap = draw(kind)
            relative = rng.normal(-0.6, 0.2)  # never accused: only clearing is tested here
            decision = decide(relative, innocent, strong, 0.01, beta, absolute, pure, gap)[0]
            if kind == "innocent":
                innocent_cleared += decision == "not-trained-on-generator"
            else:
                cleared += decision == "not-trained-on-generator"
    assert_rate_at_most(cleared, trials, beta, f"false clearing of a {drawn_from} guilty suspect")
    assert innocent_cleared > 0.5 * trials, innocent_cleared


def test_overlapping_populations_are_inconclusive_not_guessed():
    rng = np.random.default_rng(5)
    innocent, guilty = Population(rng.normal(0, 1, 20), 1e-9), Population(rng.normal(0.2, 1, 5), 1e-9)
    decisions = [decide(rng.normal(0.1, 1), innocent, guilty, 0.01, 0.05)[0] for _ in range(200)]
    assert decisions.count("inconclusive") > 150


# ---- end to end, real models through AuditRun ------------------------------------------------------------

# Five reference styles, all further from the defender's (style 0) than the innocent suspect's (0.3).
STYLES = {"s5": 0.5, "s6": 0.6, "s7": 0.7, "s8": 0.8, "s10": 1.0}
REFERENCES = list(STYLES)
SETTINGS = {label: {"use": "glyphs", "style": style} for label, style in STYLES.items()}
RECIPES = {"a": {}, "b": {"per_class_factor": 0.5}, "c": {"share": 0.5}, "d": {"share": 1.0}}
AUDIT = {
    "seed": 3,
    "task": {"classes": ["hbar", "vbar", "diag", "ring"], "image_size": 8},
    "generator": {"use": "glyphs", "style": 0.0},
    "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "pixel-logistic"},
    "validation": {"prompt": "a photo of a {label}", "per_class": 60, "batch_size": 20},
    "suspect": [{"name": "unused", "use": "pixel-logistic", "model_dir": "nowhere"}],
    "test": [
        {"use": "calibrated", "references": REFERENCES, "reference_settings": SETTINGS, "recipes": RECIPES}
    ],
}


@pytest.fixture
def glyph_plugins():
    return isolated_plugins((GlyphPlugin(), "glyphs"), (plugin, "trainprove-calibrated"))


def _suspects(plugins, store, tmp_path):
    """Suspects trained on the defender's style (guilty) and on an unseen style (innocent)."""
    config = config_from_dict(AUDIT, plugins)
    ws = AuditRun(config, plugins, store, show_progress=False).workspace
    out = []
    for name, style, truth in (
        ("guilty", 0.0, "trained-on-generator"),
        ("innocent", 0.3, "not-trained-on-generator"),
    ):
        images = ws.image_set(
            name,
            ws.generator(ws.plugin_table("generator", "glyphs", {"style": style})),
            ImageSetConfig("{label}", 50, seed=77),
        )
        model_dir, _, _ = ws.trained_model(config.trainer, images)
        out.append({"name": name, "use": "pixel-logistic", "model_dir": str(model_dir), "truth": truth})
    return out


def test_the_rule_in_an_audit_accuses_the_guilty_and_pays_references_once(glyph_plugins, tmp_path):
    store = Store(tmp_path / "store")
    doc = {**AUDIT, "suspect": _suspects(glyph_plugins, store, tmp_path)}
    result = run_audit(config_from_dict(doc, glyph_plugins), glyph_plugins, tmp_path / "out", store, False)
    verdicts = {v["suspect"]: v for v in result.report["verdicts"]}
    assert verdicts["guilty"]["decision"] == "trained-on-generator", verdicts["guilty"]["explanation"]
    assert verdicts["innocent"]["decision"] != "trained-on-generator", verdicts["innocent"]["explanation"]
    details = verdicts["guilty"]["details"]
    assert details["innocent"]["n"] == 5 * 4 and details["innocent"]["sources"] == 5
    assert details["guilty"]["n"] == 4
    # the separation `plan` reads: the guilty references far above the innocent ones on both statistics
    assert details["separation"]["accuse"] > 0 and details["separation"]["clear"] > 0
    assert details["p_innocent"] <= 0.01 and "with probability at most" in verdicts["guilty"]["explanation"]
    # Each suspect answered the validation set and both reference sets, counted in its queries.
    per_class = max(10, 60 // 5)
    suspects = {s["name"]: s for s in result.report["suspects"]}
    assert suspects["guilty"]["queries_sent"] == 4 * 60 + 5 * 4 * per_class

    # A second audit with one more suspect trains no reference model again.
    models = len(list((store.root / "models").iterdir()))
    extra = {**doc["suspect"][0], "name": "guilty-again"}
    doc2 = {**doc, "suspect": doc["suspect"] + [extra]}
    run_audit(config_from_dict(doc2, glyph_plugins), glyph_plugins, tmp_path / "out2", store, False)
    assert len(list((store.root / "models").iterdir())) == models


def test_bad_references_are_refused(glyph_plugins, tmp_path):
    with pytest.raises(ConfigError, match="at least two"):
        CalibratedTest(["moved"])
    with pytest.raises(ConfigError, match="not in `references`"):
        CalibratedTest(REFERENCES, {"other": {}})
    with pytest.raises(ConfigError, match="not `weak`"):
        CalibratedTest(REFERENCES, recipes={"a": {"weak": True}})
    with pytest.raises(ConfigError, match="trains innocent models"):
        CalibratedTest(REFERENCES, recipes={"a": {"innocent": False}})
    doc = {
        **AUDIT,
        "test": [
            {
                "use": "calibrated",
                "references": ["twin", "s5"],
                "reference_settings": {
                    "twin": {"use": "glyphs", "style": 0.0},
                    "s5": SETTINGS["s5"],
                },
            }
        ],
    }
    doc["suspect"] = _suspects(glyph_plugins, Store(tmp_path / "s"), tmp_path)[:1]
    result = run_audit(
        config_from_dict(doc, glyph_plugins), glyph_plugins, tmp_path / "o", Store(tmp_path / "s"), False
    )
    assert "is the audit's own generator" in result.errors[0]


def test_the_rule_states_its_workload_before_any_work(glyph_plugins, tmp_path):  # noqa: F811
    """`trainprove check` and `plan` print it: per recipe one innocent model per reference source and one
    guilty model, each on its own training set, a validation set per source, and the queries these add."""
    config = config_from_dict(AUDIT, glyph_plugins)
    rule = CalibratedTest(REFERENCES, recipes=RECIPES)
    work = rule.workload(config)
    k, classes = len(REFERENCES), 4
    per_class = max(10, 60 // k)
    assert work.models == len(RECIPES) * (k + 1)
    assert work.queries_per_suspect == k * per_class * classes
    training = sum(round(40 * r.get("per_class_factor", 1.0)) for r in RECIPES.values()) * (k + 1) * classes
    assert work.images == training + k * per_class * classes
    # what more sources buy: per number of sources, its cost and the separation that decides 0.5 / 0.9
    rows = [note.split() for note in work.notes if note.startswith("  ") and note.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [k, k + 2, 10, 20]
    assert [int(r[1]) for r in rows] == [len(RECIPES) * (n + 1) for n in (k, k + 2, 10, 20)]
    needed = [float(r[3]) for r in rows]
    assert needed == sorted(needed, reverse=True)  # more sources accuse sooner
    with AuditRun(config, glyph_plugins, Store(tmp_path / "store"), False) as run:
        lines = run.workload()
    assert not (tmp_path / "store").exists()  # stated, not done
    assert lines[1] == f"models trained: the shadow; calibrated: {work.models} reference model(s)"
    assert lines[2].startswith(f"each suspect answers {60 * classes + work.queries_per_suspect:,} images")
