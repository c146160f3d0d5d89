"""TrainProVe decision tests (Xie et al., CVPR 2025) for trainprove."""
