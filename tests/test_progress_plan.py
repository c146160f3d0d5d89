"""Progress that tells the truth: the plan's step count is known before its first step. A decision test
that adds steps along the way (reference models, their answer sets) declares them up front
(`progress_steps`), the plan reserves them, and its `add` calls then take from the reserve instead of
growing the plan, so the estimate of what is left does not jump."""

from __future__ import annotations

from trainprove_core import progress
from trainprove_core.engine.run import AuditRun


def total() -> int:
    return progress._state.plan.total


def test_reserved_steps_are_counted_before_they_are_announced():
    with progress.plan(10, "audit", enabled=False, reserved=4):
        assert total() == 10
        progress.add(3)  # announced along the way: already counted
        assert total() == 10
        progress.add(2)  # one more than declared: the plan grows by it only
        assert total() == 11
        with progress.plan(5, "inner", reserved=2):  # an audit inside a demo: its steps and its reserve
            assert total() == 16
            progress.add(2)
            assert total() == 16


def test_an_audit_asks_its_tests_for_the_steps_they_will_add():
    class Declares:
        def progress_steps(self, config, models):
            return 7 + 2 * models

    class Silent:
        pass

    class Config:
        suspects = [object(), object(), object()]
        negative_control = object()
        positive_control = None

    run = AuditRun.__new__(AuditRun)  # only what `steps` reads
    run.config, run.tests = Config(), {"a": Declares(), "b": Silent()}
    assert run.reserved_steps() == 7 + 2 * 4  # three suspects and the negative control
    assert (
        run.steps() == 4 + 3 + 4 + run.reserved_steps()
    )  # the negative control: set, model, two answer sets


def test_the_calibrated_rule_reserves_the_steps_its_references_and_answers_take():
    """Its `progress_steps` (the `ReservesSteps` protocol) counts what `build` and `decide` announce."""
    from trainprove_calibrated.rule import CalibratedTest

    from trainprove_core import ReservesSteps

    class Validation:
        rounds = 1

    class Config:
        validation = Validation()

    rule = CalibratedTest(["a", "b", "c"], recipes={"x": {}, "y": {"share": 0.5}, "z": {"innocent": False}})
    assert isinstance(rule, ReservesSteps)
    # 3 sets; training sets: 2 recipes x 3 innocent + 3 guilty + 1 mixture x 3; models 6 + 3 and their
    # answer sets 6 x 3 + 3 x 4; then 3 reference answer sets per judged model
    steps = rule.progress_steps(Config(), 2)
    assert steps == {"generate": 3 + (6 + 3 + 3), "train": 9, "query": 18 + 12 + 2 * 3}


def test_the_estimate_prices_each_kind_of_step_at_its_own_cost():
    """A plan of 3 trainings and 20 answer sets. The first training took 10 s (imports and loading, paid
    once), the second 2 s; nine answer sets were covered by a batch of ten that took 1 s. Left: one
    training at 2 s and ten answer sets at 0.1 s, 3 s. The mean of the steps that did work times the
    steps left would say 82 s; before a kind is measured beyond its first step, it says it is estimating."""
    with progress.plan(23, "audit", enabled=False, kinds={"train": 3, "query": 20}):
        the_plan = progress._state.plan
        the_plan.ended("train", 10.0)
        for _ in range(9):
            progress.skip("query")
        the_plan.ended("query", 1.0)
        assert the_plan.left() is None  # one training, paying its one-off costs, says little
        assert "estimating" in the_plan.summary()
        the_plan.ended("train", 2.0)
        assert the_plan.left() == 2.0 + 10 * 0.1
