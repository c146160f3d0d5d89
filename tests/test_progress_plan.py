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
    assert rule.progress_steps(Config(), 2) == 3 + (6 + 3 + 3) + (9 + 18 + 12) + 2 * 3
