"""`digits-gmm` and `fashion-gmm`: PCA plus one Gaussian mixture per class, sampled with numpy alone.

Training (scikit-learn) projects all training images on their first principal axes (`SHAPES`) and fits
a mixture of that many full-covariance Gaussian mixture per class in that space. An image is: pick a
mixture component with the request's own `numpy.random.Generator`, draw a point from it, map it back to
pixels, clip to [0, 1]. The parameters ship as an `.npz` file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import HOUSE_STYLES
from .base import NUM_CLASSES, EmbeddedGenerator
from .weights import locate
from .worlds import DIGITS, FASHION, World

SHAPES = {DIGITS.name: (24, 4), FASHION.name: (40, 4)}
"""Per world: principal components kept, mixture components per class."""


def train(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    log: Callable[[str], None] = print,
    world: World = DIGITS,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the PCA and the per-class mixtures on `images` ((N, S, S) or (N, S, S, 3), in [0, 1]);
    deterministic for a seed."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    components, mixtures = SHAPES[world.name]
    flat = images.reshape(len(images), -1).astype(np.float64)
    pca = PCA(n_components=components, svd_solver="full").fit(flat)
    codes = pca.transform(flat)
    weights, means, chols, log_likelihood = [], [], [], []
    for c in range(NUM_CLASSES):
        mixture = GaussianMixture(
            mixtures, covariance_type="full", reg_covar=1e-3, n_init=2, random_state=seed + c
        ).fit(codes[labels == c])
        weights.append(mixture.weights_)
        means.append(mixture.means_)
        chols.append(np.linalg.cholesky(mixture.covariances_))
        log_likelihood.append(mixture.score(codes[labels == c]))
    log(f"  {world.model('gmm')} mean log-likelihood per image {np.mean(log_likelihood):.2f}")
    params = {
        "pca_mean": pca.mean_,
        "pca_components": pca.components_,
        "weights": np.stack(weights),
        "means": np.stack(means),
        "chols": np.stack(chols),
    }
    stats = {
        "pca_components": components,
        "mixture_components": mixtures,
        "explained_variance": round(float(pca.explained_variance_ratio_.sum()), 4),
        "mean_log_likelihood": round(float(np.mean(log_likelihood)), 3),
    }
    return params, stats


def save(params: dict[str, np.ndarray], path: Path) -> None:
    """Write the parameters as an uncompressed `.npz` whose bytes depend only on the values (the hash in
    the manifest must be reproducible)."""
    with open(path, "wb") as f:
        np.savez(f, **{k: np.ascontiguousarray(v, dtype=np.float64) for k, v in sorted(params.items())})


class GMMGenerator(EmbeddedGenerator):
    """The shipped PCA + Gaussian-mixture model; each image drawn from its own numpy Generator."""

    def __init__(self, *, house_style: bool, batch_size: int, world: World = DIGITS) -> None:
        name = world.model("gmm")
        path, digest = locate(name, house_style, ".npz")
        with np.load(path) as data:
            self.params = {k: data[k] for k in data.files}
        self.components, self.mixtures = SHAPES[world.name]
        super().__init__(
            name,
            batch_size,
            {
                "house_style": HOUSE_STYLES[name] if house_style else None,
                "weights_sha256": digest,
                "sampler": {
                    "pca_components": self.components,
                    "mixture_components": self.mixtures,
                    "rng": "PCG64",
                },
                "numpy": np.__version__,
            },
            world,
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        p = self.params
        codes = np.empty((len(seeds), self.components))
        for i, (seed, c) in enumerate(zip(seeds, classes, strict=True)):
            rng = np.random.default_rng(seed)
            k = rng.choice(self.mixtures, p=p["weights"][c])
            codes[i] = p["means"][c, k] + p["chols"][c, k] @ rng.standard_normal(self.components)
        # Row by row, so no BLAS call ever sees a batch-dependent shape (see base.py on why that matters).
        pixels = np.stack([code @ p["pca_components"] for code in codes]) + p["pca_mean"]
        size, channels = self.world.size, self.world.channels
        shape = (-1, size, size) if channels == 1 else (-1, size, size, channels)
        return np.clip(pixels, 0.0, 1.0).reshape(shape)
