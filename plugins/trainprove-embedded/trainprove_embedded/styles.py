"""The real digits, and the house styles each embedded generator is trained on.

scikit-learn's digits are 8x8 grey images with values 0..16. A house style is a deterministic rendering
of a real digit (thicker or thinner strokes, a slant, a rotation, a blur) applied to the training data of
one generator, the stand-in for each text-to-image model's own training data and aesthetic: the
generator learns the style, nothing is pasted onto its outputs. Styles are drawn at 4x resolution
(32x32, bilinear up-sampling) and averaged back down to 8x8, so strokes change by fractions of a pixel.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import ndimage

SIZE = 8
UPSCALE = 4
MAX_VALUE = 16.0


@lru_cache(maxsize=1)
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as float32 (N, 8, 8) in [0, 1], and their labels (N,) int64, in sklearn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / MAX_VALUE).astype(np.float32)
    images.setflags(write=False)
    labels = digits.target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def _bold(big: np.ndarray) -> np.ndarray:
    return ndimage.grey_dilation(big, size=(5, 5))


def _thin(big: np.ndarray) -> np.ndarray:
    # Erosion alone would leave faint strokes; re-stretching the contrast keeps every stroke visible.
    thin = ndimage.grey_erosion(big, size=(5, 5))
    return thin / max(float(thin.max()), 1e-6)


def _slant(big: np.ndarray) -> np.ndarray:
    # Italic: the top of the digit leans right. Output (r, c) samples input (r, c + k (r - centre)).
    k = 0.35
    centre = (big.shape[0] - 1) / 2
    matrix = np.array([[1.0, 0.0], [k, 1.0]])
    offset = np.array([0.0, -k * centre])
    return ndimage.affine_transform(big, matrix, offset=offset, order=1, mode="constant")


def _rotated(big: np.ndarray) -> np.ndarray:
    # Counter-clockwise, so the top leans left: the opposite of the slant style.
    return ndimage.rotate(big, 25.0, reshape=False, order=1, mode="constant")


def _blur(big: np.ndarray) -> np.ndarray:
    # A soft glow rather than a faded digit: the contrast is stretched back after blurring.
    soft = ndimage.gaussian_filter(big, sigma=2.5)
    return soft / max(float(soft.max()), 1e-6)


STYLES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "bold": _bold,
    "thin": _thin,
    "slant": _slant,
    "rotated": _rotated,
    "blur": _blur,
}
"""House styles by name: each maps one 32x32 float image in [0, 1] to another."""


def render(images: np.ndarray, style: str | None) -> np.ndarray:
    """`images` (N, 8, 8) in [0, 1] drawn in `style` (None: unchanged), as float32 (N, 8, 8) in [0, 1]."""
    if style is None:
        return np.asarray(images, dtype=np.float32).copy()
    draw = STYLES[style]
    out = np.empty((len(images), SIZE, SIZE), dtype=np.float32)
    for i, image in enumerate(images):
        big = ndimage.zoom(image.astype(np.float64), UPSCALE, order=1, mode="nearest", grid_mode=True)
        styled = np.clip(draw(big), 0.0, 1.0)
        out[i] = styled.reshape(SIZE, UPSCALE, SIZE, UPSCALE).mean(axis=(1, 3))
    return out


def to_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """Float (N, S, S) grey or (N, S, S, 3) RGB in [0, 1] (values outside are clipped) to uint8 RGB
    (N, S, S, 3), grey replicated."""
    pixels = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    return pixels if pixels.ndim == 4 else np.repeat(pixels[..., None], 3, axis=-1)
