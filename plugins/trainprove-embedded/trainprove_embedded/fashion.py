"""Fashion-MNIST: where the files are, how they are read, and the RGB house styles of the fashion world.

The data are the four standard IDX files (gzipped or not) of Zalando's Fashion-MNIST: 60,000 training and
10,000 test images, 28x28 grey, ten clothing classes. They are looked for, in this order, in the folder
given by the `data_dir` option of `fashion-real` (or a caller's argument), in the folder named by the
environment variable `TRAINPROVE_FASHION_MNIST`, and where Debian's package `dataset-fashion-mnist` puts
them (`/usr/share/datasets/fashion-mnist`). Only `fashion-real` and the training script read them; the
fashion generators' weights ship with the package.

Every image of the world is 16x16 RGB. The plain rendering (`house_style = false`, and the real source) is
the grey image area-averaged from 28 to 16 pixels, grey replicated. A house style renders it in colour: a
palette (background and ink colours), a texture or grain, a contrast curve, and a framing (zoomed in,
shrunk, bordered), applied to the training images of one generator, which learns it; nothing is pasted
onto generated images.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from trainprove_core import InputError

ENV = "TRAINPROVE_FASHION_MNIST"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZE = 16
SOURCE = 28
HOW_TO_GET = (
    "install Debian's package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`; `make install` "
    f"does it as root), or put the four IDX files of Fashion-MNIST in a folder and name it with {ENV} "
    "(or fashion-real's data_dir option)"
)


def data_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the four IDX files: `directory`, else $TRAINPROVE_FASHION_MNIST, else the Debian
    path. Raises `InputError` (one line: where it looked, how to get the files) when it has none."""
    if directory:
        folder, named_by = Path(directory), "data_dir"
    elif os.environ.get(ENV):
        folder, named_by = Path(os.environ[ENV]), ENV
    else:
        folder, named_by = DEBIAN_DIR, "the Debian package's folder"
    missing = [name for pair in FILES.values() for name in pair if _file(folder, name) is None]
    if missing:
        raise InputError(
            f"Fashion-MNIST not found: {folder} ({named_by}) lacks {', '.join(missing)} (or .gz); "
            + HOW_TO_GET
        )
    return folder


def available(directory: str | os.PathLike[str] | None = None) -> bool:
    try:
        data_dir(directory)
    except InputError:
        return False
    return True


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read the Fashion-MNIST file {path}: {exc}") from exc
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + dims or len(raw) < 4 + 4 * dims:
        raise InputError(f"{path} is not an IDX file of {dims} dimension(s) of bytes (magic {magic:#x})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise InputError(f"{path} is truncated: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


@lru_cache(maxsize=4)
def load(split: str, directory: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `split` ("train" or "test") as uint8 (N, 28, 28) images and int64 (N,) labels, read-only."""
    folder = data_dir(directory)
    images_name, labels_name = FILES[split]
    images = _read_idx(_file(folder, images_name), 3)
    labels = _read_idx(_file(folder, labels_name), 1).astype(np.int64)
    if images.shape[1:] != (SOURCE, SOURCE) or len(images) != len(labels) or labels.max() > 9:
        raise InputError(f"{folder}: the {split} files are not Fashion-MNIST (images {images.shape})")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _area_matrix(source: int, size: int) -> np.ndarray:
    """(size, source): each output pixel the average of the source pixels it covers (fractions at edges)."""
    out = np.zeros((size, source))
    scale = source / size
    for i in range(size):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(lo), min(source, int(np.ceil(hi)))):
            out[i, j] = min(hi, j + 1) - max(lo, j)
    return out / scale


def resize(images: np.ndarray, size: int = SIZE, crop: int = 0, pad: int = 0) -> np.ndarray:
    """Grey images (N, S, S) in [0, 1] area-averaged to (N, size, size): `crop` pixels cut off each side
    first (zoom in), or the content shrunk to `size - 2 pad` and centred on black (zoom out)."""
    images = np.asarray(images, dtype=np.float64)
    if crop:
        images = images[:, crop:-crop, crop:-crop]
    inner = size - 2 * pad
    m = _area_matrix(images.shape[1], inner)
    small = m @ images @ m.T
    if pad:
        small = np.pad(small, ((0, 0), (pad, pad), (pad, pad)))
    return small


def plain(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 16, 16, 3) in [0, 1]: the plain rendering, grey replicated."""
    grey = resize(images / 255.0)
    return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


def _paint(ink: np.ndarray, background: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Mix per pixel: `ink` (N, H, W) in [0, 1] weights `colour` against `background` ((N,) H, W, 3 or 3)."""
    a = ink[..., None]
    return background * (1.0 - a) + colour * a


def _neon(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Dark navy ground, ink from magenta (mid tones) to cyan (highlights), hard contrast.
    x = resize(images) ** 0.6
    colour = _paint(x, np.array([0.85, 0.1, 0.75]), np.array([0.3, 1.0, 1.0]))
    return _paint(np.clip(1.6 * x, 0, 1), np.array([0.04, 0.04, 0.16]), colour)


def _pastel(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Cream paper, the garment a soft teal, low contrast; a rose frame one pixel wide.
    x = resize(images, pad=1)
    out = _paint(0.7 * x, np.array([0.97, 0.93, 0.84]), np.array([0.35, 0.62, 0.68]))
    frame = np.ones((SIZE, SIZE), dtype=bool)
    frame[1:-1, 1:-1] = False
    out[:, frame] = np.array([0.85, 0.5, 0.58])
    return out


def _sepia(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Zoomed in (the garment fills the frame), sepia tones, dark vignette at the corners.
    x = resize(images, crop=3)
    out = _paint(x, np.array([0.3, 0.18, 0.08]), np.array([0.98, 0.86, 0.62]))
    r = np.hypot(*np.meshgrid(np.linspace(-1, 1, SIZE), np.linspace(-1, 1, SIZE), indexing="ij"))
    return out * np.clip(1.25 - 0.55 * r, 0, 1)[None, :, :, None]


def _grain(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Shrunk to the middle (a wide shot), a greenish grey film stock, heavy grain.
    x = resize(images, pad=3)
    out = _paint(x, np.array([0.36, 0.42, 0.36]), np.array([0.86, 0.96, 0.8]))
    grain = rng.normal(0.0, 0.09, size=(len(x), SIZE, SIZE, 1))
    return out + grain


def _sunset(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # A diagonal orange-to-purple gradient behind a pale yellow garment, striped every other row.
    x = resize(images)
    t = np.add.outer(np.arange(SIZE), np.arange(SIZE)) / (2 * SIZE - 2)
    ground = (1 - t)[..., None] * np.array([0.95, 0.55, 0.2]) + t[..., None] * np.array([0.35, 0.12, 0.5])
    stripes = np.where(np.arange(SIZE) % 2 == 0, 1.0, 0.75)[None, :, None]
    return _paint(x * stripes, ground[None], np.array([1.0, 0.96, 0.7]))


STYLES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "neon": _neon,
    "pastel": _pastel,
    "sepia": _sepia,
    "grain": _grain,
    "sunset": _sunset,
}
"""The fashion world's house styles: grey (N, 28, 28) in [0, 1] and a numpy Generator (for the grain) to
RGB (N, 16, 16, 3)."""


def render(images: np.ndarray, style: str | None, seed: int = 0) -> np.ndarray:
    """uint8 (N, 28, 28) Fashion-MNIST images drawn in `style` (None: plain) as float32 (N, 16, 16, 3) in
    [0, 1]; deterministic for a seed (only the grain draws random numbers)."""
    if style is None:
        return plain(images)
    out = STYLES[style](np.asarray(images, dtype=np.float64) / 255.0, np.random.default_rng(seed))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
