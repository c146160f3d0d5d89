"""Sample-size planning: the power formula against simulated audits, the plan, and `trainprove plan`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from trainprove_paper import plugin
from trainprove_paper.plan import ShadowSpread, detectable_drop, grubbs_power, plan
from trainprove_paper.trainprove import TrainProVeTest

from trainprove_core.cli import cli
from trainprove_core.evidence import clopper_pearson
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.simulate import SimulatedAudit, error_rates
from trainprove_core.testing import isolated_plugins


@pytest.mark.parametrize(("n", "m", "drop"), [(8, 244, 0.05), (40, 125, 0.09), (12, 60, 0.12)])
def test_grubbs_power_matches_simulated_audits(n, m, drop):
    # Binomial batches at accuracy 0.9: one image's spread is exactly sqrt(0.9 * 0.1) = 0.3. The floor is
    # off because the formula leaves it out (with it the test is slightly more conservative).
    world = SimulatedAudit(n_batches=n, batch_size=m, shadow_accuracy=0.9, shift_sd=0.0, gap=drop)
    trials = 600
    counts = error_rates(TrainProVeTest(sd_floor=False), world, trials, seed=n)
    detected = trials - counts["false_accuse"]
    expected = grubbs_power(ShadowSpread(0.9, 0.3, n, m), drop, n, m, 0.05)
    lo, hi = clopper_pearson(detected, trials, 0.999)
    assert lo <= expected <= hi, (
        f"simulated {detected / trials:.3f} [{lo:.3f}, {hi:.3f}], formula {expected:.3f}"
    )


def test_plan_reaches_the_power_and_reports_the_current_design():
    spread = ShadowSpread(0.9, 0.3, 40, 125)
    result = plan(spread, drop=0.05, power=0.8, alpha=0.05, current_batches=40)
    designs = result["designs"]
    assert designs[0]["test"] == "trainprove" and all(d["power"] >= 0.8 for d in designs)
    assert designs[0]["queries"] <= designs[1]["queries"] and designs[1]["batches"] == 40
    assert designs[0]["batches"] >= result["fewest_batches"] == 8
    current = result["current"]
    assert current["queries"] == 5000 and current["power"] < 0.8 < 1
    assert grubbs_power(spread, current["detectable_drop"], 40, 125, 0.05) == pytest.approx(0.8, abs=1e-3)
    assert detectable_drop(spread, 0.8, 0.05, n=5, m=1000) is None  # too few batches to keep alpha


def test_shadow_spread_never_goes_below_the_binomial_value():
    perfect = ShadowSpread.from_batches(np.ones(20), np.full(20, 50))
    assert perfect.accuracy == 1.0 and perfect.sigma_1 > 0
    noisy = ShadowSpread.from_batches(np.array([0.8, 0.9, 1.0, 0.7]), np.full(4, 100))
    assert noisy.sigma_1 == pytest.approx(np.std([0.8, 0.9, 1.0, 0.7], ddof=1) * 10)


AUDIT = """
seed = 1
[task]
classes = ["hbar", "vbar", "diag", "ring"]
image_size = 8
[generator]
use = "glyphs"
[shadow]
prompt = "a {label}"
per_class = 40
trainer = "pixel-logistic"
[validation]
prompt = "a photo of a {label}"
per_class = 50
batch_size = 20
[[suspect]]
name = "never-asked"
use = "pixel-logistic"
model_dir = "nowhere"
[[test]]
use = "trainprove"
alpha = 0.1
"""


def test_plan_command_asks_only_the_shadow(tmp_path):
    (tmp_path / "audit.toml").write_text(AUDIT)
    plugins = isolated_plugins((GlyphPlugin(), "glyphs"), (plugin, "trainprove-paper"))
    plugins.hook.trainprove_commands(cli=cli)
    args = ["plan", str(tmp_path / "audit.toml"), "--store", str(tmp_path / "store"), "--no-progress"]
    text = CliRunner().invoke(cli, args + ["--drop", "0.1"], obj={"plugins": plugins})
    assert text.exit_code == 0, text.output
    assert "10 batches of 20" in text.output and "power 0.80 at alpha 0.1" in text.output
    assert len(list((tmp_path / "store" / "answers").iterdir())) == 1  # the shadow's answers, no suspect's
    as_json = CliRunner().invoke(cli, args + ["--json", "--power", "0.9"], obj={"plugins": plugins})
    result = json.loads(as_json.output)
    assert result["alpha"] == 0.1 and result["power"] == 0.9 and result["shadow"]["batches"] == 10
    bad = CliRunner().invoke(cli, args + ["--drop", "2"], obj={"plugins": plugins})
    assert bad.exit_code == 2 and "Invalid value for '--drop'" in bad.output and "0<x<1" in bad.output
