"""`digits-real` and `fashion-real`: not generative models, the real images themselves, drawn by seed.

The source for suspects trained on real data and for negative controls. A request's image is one of the
real digits of its class, picked by the request's own `numpy.random.Generator`; with ~180 digits per
class, sets larger than that repeat digits (as any resampling of a small real data set would).
"""

from __future__ import annotations

import hashlib

import numpy as np

from . import fashion
from .base import NUM_CLASSES, EmbeddedGenerator
from .styles import real_digits
from .worlds import FASHION

NAME = "digits-real"


class RealDigits(EmbeddedGenerator):
    """Deterministic draws of scikit-learn's digits of the requested class."""

    def __init__(self, *, batch_size: int) -> None:
        import sklearn

        images, labels = real_digits()
        self.images = images
        self.by_class = [np.flatnonzero(labels == c) for c in range(NUM_CLASSES)]
        digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
        super().__init__(
            NAME,
            batch_size,
            {
                "source": "sklearn.datasets.load_digits",
                "data_sha256": digest,
                "sampler": {"draw": "uniform over the class, numpy PCG64 per seed"},
                "scikit-learn": sklearn.__version__,
            },
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        picks = [
            self.by_class[c][np.random.default_rng(seed).integers(len(self.by_class[c]))]
            for seed, c in zip(seeds, classes, strict=True)
        ]
        return self.images[picks]


class RealFashion(EmbeddedGenerator):
    """`fashion-real`: deterministic draws of Fashion-MNIST's test split (10,000 images, never seen by the
    fashion generators, which trained on the training split), plain: 16x16, grey replicated."""

    def __init__(self, *, batch_size: int, data_dir: str) -> None:
        images, labels = fashion.load("test", data_dir or None)
        self.images = images
        self.by_class = [np.flatnonzero(labels == c) for c in range(NUM_CLASSES)]
        digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
        super().__init__(
            "fashion-real",
            batch_size,
            {
                "source": "Fashion-MNIST, test split (t10k)",
                "data_sha256": digest,
                "sampler": {"draw": "uniform over the class, numpy PCG64 per seed"},
                "rendering": "area-averaged to 16 px, grey replicated",
            },
            FASHION,
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        picks = [
            self.by_class[c][np.random.default_rng(seed).integers(len(self.by_class[c]))]
            for seed, c in zip(seeds, classes, strict=True)
        ]
        return fashion.plain(self.images[picks])
