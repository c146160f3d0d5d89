"""`digits-gmm`: PCA plus one Gaussian mixture per class, sampled with numpy alone (no torch).

Training (scikit-learn) projects all training digits on their first `COMPONENTS` principal axes and fits
a `MIXTURE`-component full-covariance Gaussian mixture per class in that space. An image is: pick a
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

NAME = "digits-gmm"
STYLE = HOUSE_STYLES[NAME]
COMPONENTS = 24
MIXTURE = 4


def train(
    images: np.ndarray, labels: np.ndarray, seed: int, log: Callable[[str], None] = print
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit the PCA and the per-class mixtures on `images` (N, 8, 8) in [0, 1]; deterministic for a seed."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    flat = images.reshape(len(images), -1).astype(np.float64)
    pca = PCA(n_components=COMPONENTS, svd_solver="full").fit(flat)
    codes = pca.transform(flat)
    weights, means, chols, log_likelihood = [], [], [], []
    for c in range(NUM_CLASSES):
        mixture = GaussianMixture(
            MIXTURE, covariance_type="full", reg_covar=1e-3, n_init=2, random_state=seed + c
        ).fit(codes[labels == c])
        weights.append(mixture.weights_)
        means.append(mixture.means_)
        chols.append(np.linalg.cholesky(mixture.covariances_))
        log_likelihood.append(mixture.score(codes[labels == c]))
    log(f"  {NAME} mean log-likelihood per image {np.mean(log_likelihood):.2f}")
    params = {
        "pca_mean": pca.mean_,
        "pca_components": pca.components_,
        "weights": np.stack(weights),
        "means": np.stack(means),
        "chols": np.stack(chols),
    }
    stats = {
        "pca_components": COMPONENTS,
        "mixture_components": MIXTURE,
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

    def __init__(self, *, house_style: bool, batch_size: int) -> None:
        path, digest = locate(NAME, house_style, ".npz")
        with np.load(path) as data:
            self.params = {k: data[k] for k in data.files}
        super().__init__(
            NAME,
            batch_size,
            {
                "house_style": STYLE if house_style else None,
                "weights_sha256": digest,
                "sampler": {"pca_components": COMPONENTS, "mixture_components": MIXTURE, "rng": "PCG64"},
                "numpy": np.__version__,
            },
        )

    def _sample(self, seeds: list[int], classes: np.ndarray) -> np.ndarray:
        p = self.params
        codes = np.empty((len(seeds), COMPONENTS))
        for i, (seed, c) in enumerate(zip(seeds, classes, strict=True)):
            rng = np.random.default_rng(seed)
            k = rng.choice(MIXTURE, p=p["weights"][c])
            codes[i] = p["means"][c, k] + p["chols"][c, k] @ rng.standard_normal(COMPONENTS)
        # Row by row, so no BLAS call ever sees a batch-dependent shape (see base.py on why that matters).
        pixels = np.stack([code @ p["pca_components"] for code in codes]) + p["pca_mean"]
        return np.clip(pixels, 0.0, 1.0).reshape(-1, 8, 8)
