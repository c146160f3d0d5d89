"""trainprove: did this classifier learn from my generator's images? (TrainProVe, CVPR 2025)."""

__version__ = "0.1.0"
