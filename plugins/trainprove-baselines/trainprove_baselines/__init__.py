"""Baseline decision tests for trainprove, to measure TrainProVe against (see docs/decision-tests.md)."""
