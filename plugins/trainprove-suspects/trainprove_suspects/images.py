"""From the audit's images to what a model takes: resizing, channel order, value range, layout, encoding.

The audit hands adapters uint8 RGB images (N, H, W, 3) at the task's size. A suspect exported to ONNX or
served over HTTP was trained with its own preprocessing, which its file does not record, so the audit
file declares it (`Preprocessing`) and both adapters apply it the same way.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Layout = Literal["NCHW", "NHWC", "flat"]
"""Image batches channels first, channels last, or each image one flat vector of H x W x 3 values (the
pixels of NHWC, row-major), as models on tabular inputs (scikit-learn, XGBoost) are served."""

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Preprocessing:
    """How a suspect expects its pixels.

    `size` is (height, width) to resize to, or None to keep the task's size. Float inputs are
    `(pixel * scale - mean) / std` per channel, with scale 1/255 for value range "0-1" and 1 for "0-255";
    integer inputs get the raw (resized, reordered) pixels.
    """

    size: tuple[int, int] | None = None
    interpolation: str = "bilinear"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    value_range: Literal["0-1", "0-255"] = "0-1"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], size: tuple[int, int] | None) -> Preprocessing:
        """Built from an adapter's validated settings (the keys of `plugin.PREPROCESSING_OPTIONS`)."""
        for key in ("mean", "std"):
            if len(settings[key]) != 3:
                raise ValueError(f"key {key!r} needs one value per channel (3), got {settings[key]!r}")
        if any(s == 0 for s in settings["std"]):
            raise ValueError(f"key 'std' must not contain 0, got {settings['std']!r}")
        return cls(
            size=size,
            interpolation=settings["interpolation"],
            channel_order=settings["channel_order"],
            value_range=settings["value_range"],
            mean=tuple(float(v) for v in settings["mean"]),
            std=tuple(float(v) for v in settings["std"]),
        )

    def identity(self) -> dict[str, Any]:
        """What changes the pixels a model sees, for cache keys."""
        return {
            "size": list(self.size) if self.size else None,
            "interpolation": self.interpolation,
            "channel_order": self.channel_order,
            "value_range": self.value_range,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def pixels(self, images: np.ndarray) -> np.ndarray:
        """Resized, channel-reordered uint8 images (N, H, W, 3)."""
        if self.size is not None and images.shape[1:3] != self.size:
            images = resize(images, self.size, self.interpolation)
        if self.channel_order == "BGR":
            images = images[..., ::-1]
        return images

    def tensor(self, images: np.ndarray, layout: Layout, dtype: np.dtype | type) -> np.ndarray:
        """The model's input tensor: pixels, normalised when `dtype` is floating, in `layout`."""
        pixels = self.pixels(images)
        if np.issubdtype(np.dtype(dtype), np.floating):
            scale = 1 / 255 if self.value_range == "0-1" else 1.0
            mean, std = np.array(self.mean), np.array(self.std)
            if self.channel_order == "BGR":  # mean and std are written in RGB order, like the images
                mean, std = mean[::-1], std[::-1]
            # One fused multiply-add per pixel: (p * scale - mean) / std == p * a + b.
            a = (scale / std).astype(np.float32)
            b = (-mean / std).astype(np.float32)
            x = pixels * a + b
        else:
            x = pixels
        if layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        elif layout == "flat":
            x = x.reshape(len(x), -1)
        return np.ascontiguousarray(x, dtype=dtype)


def infer_layout(shape: Sequence[Any], declared: str) -> Layout:
    """NCHW, NHWC or flat from an input shape (variable axes as names, None or -1): rank 2 is flat; of
    rank 4 the axis of size 3 is the channel axis, unless `declared` says which."""
    if declared != "auto":
        if (declared == "flat") != (len(shape) == 2):
            raise ValueError(f"`layout = {declared!r}` does not fit input shape {list(shape)}")
        return declared  # type: ignore[return-value]
    if len(shape) == 2:
        return "flat"
    channels_first, channels_last = shape[1] == 3, shape[3] == 3
    if channels_first != channels_last:
        return "NCHW" if channels_first else "NHWC"
    raise ValueError(f"cannot tell the layout of input shape {list(shape)}; set `layout` to NCHW or NHWC")


def requested_size(requested: int | None, image_size: int) -> tuple[int, int] | None:
    """The (height, width) of a `resize` key, or None when it is unset or keeps the task's size."""
    return (requested, requested) if requested is not None and requested != image_size else None


def spatial_size(
    shape: Sequence[Any], layout: Layout, requested: int | None, image_size: int
) -> tuple[int, int] | None:
    """The (height, width) images must be resized to for a model input of `shape`, or None to keep the
    task's `image_size`.

    A model with a fixed size gets that size (and the `resize` key, if set, must agree); a model with
    variable height and width gets `resize` if set, else the task's images as they are.
    """
    if layout == "flat":
        return flat_size(shape[1], requested, image_size)
    height, width = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        if requested is not None and (height, width) != (requested, requested):
            raise ValueError(f"`resize = {requested}` but the model takes {height}x{width} images")
        return None if (height, width) == (image_size, image_size) else (height, width)
    return requested_size(requested, image_size)


def flat_size(length: Any, requested: int | None, image_size: int) -> tuple[int, int] | None:
    """The (height, width) for a flat input of `length` values per image (S x S x 3), or None to keep the
    task's size; a variable length takes `resize` or the task's size."""
    if not isinstance(length, int) or length <= 0:
        return requested_size(requested, image_size)
    if length % 3 or round((length // 3) ** 0.5) ** 2 != length // 3:
        raise ValueError(f"a flat input of {length} values per image is not S x S x 3 pixels")
    fixed = round((length // 3) ** 0.5)
    if requested is not None and fixed != requested:
        raise ValueError(f"`resize = {requested}` but the model takes {length} values ({fixed}x{fixed}x3)")
    return None if fixed == image_size else (fixed, fixed)


def resize(images: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """uint8 RGB images resized to (height, width) with Pillow (the resampling the task's images had)."""
    from PIL import Image

    methods = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
    height, width = size
    out = np.empty((len(images), height, width, images.shape[-1]), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((width, height), methods[interpolation]))
    return out


def encode_png(image: np.ndarray) -> bytes:
    """One uint8 RGB image (H, W, 3) as a PNG file.

    Written directly (8-bit RGB, no row filters, zlib level 1) because for the small images of an audit
    Pillow's fixed cost per image is most of the client's CPU time per request; any PNG reader decodes it.
    """
    height, width, _ = image.shape
    rows = np.zeros((height, 1 + width * 3), dtype=np.uint8)  # a 0 before each row: filter type "none"
    rows[:, 1:] = image.reshape(height, width * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
        + chunk(b"IEND", b"")
    )


def encode_image(image: np.ndarray, fmt: Literal["png", "jpeg"], quality: int = 95) -> bytes:
    """One uint8 RGB image as PNG (lossless) or JPEG bytes."""
    from PIL import Image

    if fmt == "png":
        return encode_png(image)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_base64(
    images: Sequence[np.ndarray], fmt: Literal["png", "jpeg"], quality: int = 95, data_url: bool = False
) -> list[str]:
    """Images as base64 strings (optionally `data:` URLs), the way JSON APIs usually take them."""
    prefix = f"data:image/{fmt};base64," if data_url else ""
    return [
        prefix + base64.b64encode(encode_image(np.ascontiguousarray(im), fmt, quality)).decode("ascii")
        for im in images
    ]


def decode_image(data: str | bytes) -> np.ndarray:
    """A base64 string (or `data:` URL) or raw bytes of a PNG/JPEG image, as uint8 RGB (H, W, 3)."""
    from PIL import Image

    if isinstance(data, str):
        if data.startswith("data:"):
            data = data.split(",", 1)[1]
        data = base64.b64decode(data, validate=True)
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
