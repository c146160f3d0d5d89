"""The report's first screen states the finding: the generator's identity, which rule governs and why,
one quotable sentence per suspect whose p-value reads in the direction its rule tests, disagreements
shown; the audit file's `[[test]] governs` picks the rule."""

from __future__ import annotations

import html
import re

import pytest
from core_test_helpers import base_audit
from test_report import INCONCLUSIVE, NOT_TRAINED, TRAINED, make_report, verdict

from trainprove_core.config import config_from_dict
from trainprove_core.errors import ConfigError
from trainprove_core.report import render_html
from trainprove_core.report.finding import findings, governing_test, meaning, sentence
from trainprove_core.report.reading import as_report

SHA = "ab" * 32


def calibrated(suspect: str, decision: str, p_innocent: float, p_guilty: float, **details) -> dict:
    return verdict(
        suspect,
        "calibrated",
        decision,
        p_value=p_innocent,
        alpha=0.01,
        threshold=0.01,
        details={"p_innocent": p_innocent, "p_guilty": p_guilty, "beta": 0.05, **details},
        plugin="trainprove-calibrated",  # a verdict names its plugin; the audit file, the rule
        distribution="trainprove-calibrated",
    )


def with_calibrated() -> dict:
    report = make_report()
    report["verdicts"] += [
        calibrated("alpha-net", TRAINED, 0.002, 0.6),
        calibrated("beta-net", NOT_TRAINED, 0.7, 0.03),
    ]
    report["generator"] = {
        "use": "stable-diffusion-v1-4",
        "identity": {"model": {"directory_sha256": SHA}, "sampling": {"steps": 25}, "dtype": "float32"},
    }
    report["suspects"][0]["identity"] = {"adapter": "timm", "arch": "resnet18", "weights_sha256": "cd" * 32}
    report["manifest"]["audit"] = {
        "generator": {"use": "stable-diffusion-v1-4", "model": "./weights/my-sd", "revision": "v2"},
        "suspect": [
            {"name": "alpha-net", "use": "timm", "checkpoint": "suspects/alpha.pth"},
            {"name": "dead-api", "use": "http", "url": "http://127.0.0.1:9/predict", "token_env": "<secret>"},
        ],
        "test": [{"use": "trainprove"}, {"use": "welch"}, {"use": "threshold"}, {"use": "calibrated"}],
    }
    return report


def first_screen(page: str) -> str:
    """The text of the page before its counts (the summary): what a reader meets first."""
    head = page[page.index("<body>") : page.index("<p class='summary'>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", head)).split())


def test_the_calibrated_rule_governs_by_default_and_each_suspect_gets_a_quotable_sentence():
    report = with_calibrated()
    governing = governing_test(as_report(report))
    assert governing.test == "calibrated" and "bound both errors" in governing.why
    page = render_html(report)
    text = first_screen(page)
    assert "The finding is the verdict of the rule calibrated" in text
    assert (
        "alpha-net: trained on stable-diffusion-v1-4's images, by the rule calibrated. "
        "p_innocent = 0.0020 ≤ α = 0.0100: a model not trained on stable-diffusion-v1-4's images, "
        "trained like the rule's reference models, would score this high with probability at most 0.0020."
        in text
    )
    assert (
        "beta-net: not trained on stable-diffusion-v1-4's images, by the rule calibrated. "
        "p_guilty = 0.0300 ≤ β = 0.0500: a model trained on "
        "stable-diffusion-v1-4's images (wholly or in part)" in text
    )
    assert "dead-api: not judged: [suspect dead-api] http: 503 after 5 tries" in text
    # Disagreements are shown where they are: welch clears alpha-net, which calibrated finds trained.
    assert "welch not trained (disagrees)" in text and "trainprove trained" in text
    assert "On 2 of 3 suspects another rule decides otherwise" in text
    # The finding comes first, its sentence links to the evidence.
    assert page.index("id='finding'") < page.index("class='summary'") < page.index('id="verdicts"')
    found = findings(as_report(report), governing)
    assert [f.index for f in found] == [6, 7, None]
    assert f"href='#v{found[0].index}'" in page


def test_the_first_screen_names_the_generator_and_each_suspect_exactly():
    text = first_screen(render_html(with_calibrated()))
    for fact in ("plugin stable-diffusion-v1-4", "model ./weights/my-sd", "revision v2", SHA):
        assert fact in text
    assert "model.directory_sha256" in text and "steps" not in text  # a hash names it, sampling does not
    assert "adapter timm" in text and "checkpoint suspects/alpha.pth" in text and "cd" * 32 in text
    assert "url http://127.0.0.1:9/predict" in text and "token_env" not in text  # what names it, only


def test_the_audit_file_names_the_governing_test():
    report = with_calibrated()
    report["manifest"]["audit"]["test"][1]["governs"] = True
    governing = governing_test(as_report(report))
    assert governing.test == "welch" and "governs = true" in governing.why
    text = first_screen(render_html(report))
    assert "alpha-net: not trained on stable-diffusion-v1-4's images, by the rule welch." in text
    assert "calibrated trained (disagrees)" in text


def test_without_a_calibrated_rule_the_first_test_governs_and_an_accusation_by_trainprove_bounds_nothing():
    report = make_report()
    governing = governing_test(as_report(report))
    assert governing.test == "trainprove" and "first test" in governing.why
    accused = verdict("a", "trainprove", TRAINED, p_value=0.43, alpha=0.05)
    said = meaning(accused, "G")
    assert said.startswith("p = 0.4300 > α = 0.0500: its score is in line with a model trained on G's images")
    assert "how often it wrongly accuses is not bounded" in said and "probability" not in said
    cleared = verdict("a", "trainprove", NOT_TRAINED, p_value=0.001, alpha=0.05)
    assert "would score this low with probability at most 0.0010" in meaning(cleared, "G")
    entropy = verdict("a", "trainprove-ent", NOT_TRAINED, p_value=0.001, details={"side": "high"})
    assert "score this high" in meaning(entropy, "G")
    # The relation is computed, not assumed: an inconsistent record is not misquoted.
    odd = verdict("a", "trainprove", TRAINED, p_value=0.001, alpha=0.05)
    assert meaning(odd, "G").startswith("p = 0.0010 ≤ α")
    assert meaning(verdict("a", "threshold", TRAINED, plugin="accuracy-threshold", p_value=None), "G") == (
        "This rule states no p-value and claims no error rate."
    )
    assert meaning(verdict("a", "t", INCONCLUSIVE), "G") == ""
    unsure = calibrated("a", INCONCLUSIVE, 0.3, 0.2, reason="the reference populations overlap")
    assert sentence(unsure, "calibrated", "G", "calibrated") == (
        "a: inconclusive, by the rule calibrated: the reference populations overlap. "
        "p_innocent = 0.3000 > α = 0.0100; p_guilty = 0.2000 > β = 0.0500."
    )


def test_an_old_report_without_a_manifest_still_states_a_finding():
    minimal = {"generator": {"use": "g"}, "verdicts": [verdict("a", "t", NOT_TRAINED, plugin="x")]}
    text = first_screen(render_html(minimal))
    assert "plugin g" in text
    assert "a: not trained on g's images, by the rule t. p = 1.00e-04, α = 0.0500" in text


def test_only_one_test_may_govern(plugins):
    doc = base_audit(
        suspect=[{"name": "s", "use": "pixel-logistic", "model_dir": "."}],
        test=[{"use": "trainprove", "governs": True}, {"use": "accuracy-threshold", "governs": True}],
    )
    with pytest.raises(ConfigError, match="key 'governs': only one"):
        config_from_dict(doc, plugins)
    doc["test"][1]["governs"] = False
    config = config_from_dict(doc, plugins)
    assert [t.governs for t in config.tests] == [True, False]
    assert config.public_document()["test"][0]["governs"] is True  # the report reads it from the manifest
