"""The paper's decision tests for trainprove: TrainProVe, TrainProVe-Ent and TrainProVe-Sim (Xie et al.,
CVPR 2025), and `trainprove plan`."""
