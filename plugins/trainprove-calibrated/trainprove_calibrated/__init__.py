"""The calibrated decision rule: reference models bound both of its error rates."""
