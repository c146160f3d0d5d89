"""Answers pass through the core's label-space mapping, checks, cache and query budget."""

from __future__ import annotations

import numpy as np
import pytest
from core_test_helpers import base_audit

from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.errors import InputError
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import Answers, Option, QueryCost, SuspectAdapterSpec
from trainprove_core.store import Store


class Relabelled:
    """A real timm model behind a different label order and a query budget, as a vendor API would be."""

    returns = "probabilities"

    def __init__(self, settings, task):
        from trainprove_timm.model import TimmSuspect

        inner = {
            "arch": None,
            "label_names": None,
            "mean": None,
            "std": None,
            "batch_size": 64,
            "device": "cpu",
        }
        self.model = TimmSuspect.from_settings({**inner, "checkpoint": settings["checkpoint"]}, task)
        self.order = settings["order"]  # our class names, in the task's order, as the vendor sees them
        self.label_names = [self.order[i] for i in settings["permutation"]]
        self.batch_size = 50
        self.cost = QueryCost(remote=True, budget=settings["budget"])
        self.as_names = settings["as_names"]
        self.refuse = settings["refuse"]
        self.identity = {"inner": self.model.identity, "labels": self.label_names, "refuse": self.refuse}

    def predict(self, images):
        answers = self.model.predict(images)
        # the vendor's output index j is its label_names[j]: reorder the task-ordered probabilities
        positions = [self.order.index(n) for n in self.label_names]
        probs = answers.probabilities[:, positions]
        labels = probs.argmax(1)
        if self.refuse:  # a vendor that refuses some images answers -1 for them
            refused = np.random.default_rng(len(images)).random(len(images)) < self.refuse
            labels = np.where(refused, -1, labels)
        if self.as_names:
            labels = np.array([self.label_names[i] if i >= 0 else -1 for i in labels], dtype=object)
        return Answers(labels, probs)


class Plugin:
    @hookimpl
    def trainprove_suspect_adapters(self):
        options = (
            Option("checkpoint", "path"),
            Option("order", "list[str]"),
            Option("permutation", "list[float]", [0, 1, 2]),
            Option("budget", "int", None),
            Option("as_names", "bool", False),
            Option("refuse", "float", 0.0, help="fraction of images the vendor refuses to answer"),
        )

        def make(settings, task):
            return Relabelled({**settings, "permutation": [int(p) for p in settings["permutation"]]}, task)

        return [SuspectAdapterSpec("relabelled", make, "timm behind another label order", options)]


@pytest.fixture
def relabel_plugins(plugins):
    plugins.register(Plugin(), "relabelled")
    return plugins


def _suspect(pool, **kw):
    return {
        "name": "vendor",
        "use": "relabelled",
        "checkpoint": str(pool["same"]),
        "order": ["disc", "ring", "hbar"],
        **kw,
    }


@pytest.mark.parametrize("as_names", [False, True])
def test_other_label_orders_map_to_the_task(relabel_plugins, suspect_pool, tmp_path, as_names):
    plugins = relabel_plugins
    direct = {"name": "direct", "use": "timm", "checkpoint": str(suspect_pool["same"])}
    doc = base_audit(suspect=[direct, _suspect(suspect_pool, permutation=[2, 0, 1], as_names=as_names)])
    report = run_audit(
        config_from_dict(doc, plugins), plugins, tmp_path / "o", Store(tmp_path / "s"), False
    ).report
    acc = {s["name"]: s["accuracy"] for s in report["suspects"]}
    assert acc["vendor"] == acc["direct"] > 0.5
    v = {v["suspect"]: v["statistic"] for v in report["verdicts"]}
    assert v["vendor"] == v["direct"]


def test_unanswered_images_pass_through_the_core_and_tests_abstain_when_too_many(
    relabel_plugins, suspect_pool, tmp_path
):
    """-1 means "not answered": the core keeps it (through the label-space mapping), the decision tests
    compute over answered images and abstain below `min_answered`."""
    store = Store(tmp_path / "s")
    doc = base_audit(suspect=[_suspect(suspect_pool, permutation=[2, 0, 1], refuse=0.02)])
    few = run_audit(config_from_dict(doc, relabel_plugins), relabel_plugins, tmp_path / "a", store, False)
    (verdict,) = few.report["verdicts"]
    assert verdict["decision"] == "trained-on-generator", verdict["explanation"]
    doc = base_audit(suspect=[_suspect(suspect_pool, permutation=[2, 0, 1], refuse=0.3, as_names=True)])
    many = run_audit(config_from_dict(doc, relabel_plugins), relabel_plugins, tmp_path / "b", store, False)
    (verdict,) = many.report["verdicts"]
    assert verdict["decision"] == "inconclusive" and "answered only" in verdict["explanation"]


def test_a_label_space_that_does_not_match_is_refused_before_any_work(
    relabel_plugins, suspect_pool, tmp_path
):
    doc = base_audit(suspect=[_suspect(suspect_pool, order=["disc", "ring", "square"])])
    with pytest.raises(
        InputError,
        match=r"^<audit>: \[suspect vendor\] key 'label_names': the model's label space does not match "
        r".*missing \['hbar'\]",
    ):
        run_audit(
            config_from_dict(doc, relabel_plugins), relabel_plugins, tmp_path / "o", Store(tmp_path / "s")
        )
    assert not (tmp_path / "s").exists()


def test_budget_stops_before_sending_and_counts_cached_answers(relabel_plugins, suspect_pool, tmp_path):
    plugins, store = relabel_plugins, Store(tmp_path / "s")
    doc = base_audit(suspect=[_suspect(suspect_pool, budget=299)])
    result = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "o", store, False)
    (entry,) = result.report["suspects"]
    assert entry["queries_sent"] == 0
    assert (
        "takes 300 queries but its budget is 299; 0 are already paid for (cached), 300 more" in entry["error"]
    )
    assert result.errors and result.report["verdicts"] == []

    doc = base_audit(suspect=[_suspect(suspect_pool, budget=300)])
    assert (
        run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "o", store, False).report["suspects"][
            0
        ]["queries_sent"]
        == 300
    )
    # Answered once: a repeat costs nothing, even with a budget of zero.
    doc = base_audit(suspect=[_suspect(suspect_pool, budget=0)])
    again = run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "o", store, False)
    assert again.errors == [] and again.report["suspects"][0]["queries_sent"] == 0
