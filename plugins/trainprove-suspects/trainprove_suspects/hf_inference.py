"""The `hf-inference` request style: image classification the way the Hugging Face Inference API (and the
`transformers` image-classification pipeline behind an endpoint) takes and answers it.

One image per request, as `{"inputs": "<base64 image>", "parameters": {"top_k": k}}` JSON or as the
image file itself with its Content-Type; the answer is a list of `{"label": ..., "score": ...}`, best
first. TorchServe's image classifier (`POST /predictions/{model}`, the file as the body, `{label: score}`
back) is the same exchange, read with `image_payload = "bytes"`.

Labels are matched to the label space by name (exactly, else ignoring case, spaces and underscores:
`names.NameIndex`); a label that names no class is counted and reported, never mapped to one. When
every class is scored (`top_k` at least the number of classes, the default) the scores are the answer's
probabilities; with fewer, the answer is the top label only.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import orjson

from trainprove_core import Answers, ConfigError, Task

from .answers import AnswerError
from .images import Preprocessing, encode_image, requested_size
from .names import NameIndex
from .options import IMAGES_PER_REQUEST
from .transport import Transport, excerpt, read_json

NOT_ANSWERED = -1


def check_one_image(settings: Mapping[str, Any], protocol: str) -> None:
    """The one-image styles send one image file a request: PNG or JPEG, not nested arrays."""
    if settings["image_format"] == "array":
        raise ConfigError(
            f"key 'image_format': protocol = {protocol!r} sends an image file, png or jpeg, not arrays",
            key="image_format",
        )
    if settings["images_per_request"] not in (1, IMAGES_PER_REQUEST.default):
        raise ConfigError(
            f"key 'images_per_request': protocol = {protocol!r} sends one image a request; leave it out "
            "(`concurrency` sets how many are in flight)",
            key="images_per_request",
        )


class HfInferenceProtocol:
    """`POST {url}` with one image; answers `[{"label": ..., "score": ...}, ...]`."""

    images_per_request = 1

    def __init__(self, settings: Mapping[str, Any], task: Task, label_space: Sequence[str]) -> None:
        check_one_image(settings, "hf-inference")
        self.url = settings["url"]
        self.settings = settings
        self.index = NameIndex(label_space)
        classes = len(label_space)
        top_k, payload = settings["top_k"], settings["image_payload"]
        if payload == "bytes" and top_k is not None:
            raise ConfigError(
                "key 'top_k': with image_payload = 'bytes' the body is the image alone and no parameters "
                "travel with it; use image_payload = 'base64' to send top_k",
                key="top_k",
            )
        few = top_k is not None and top_k < classes
        if settings["output_kind"] == "probabilities" and few:
            raise ConfigError(
                f"key 'top_k': {top_k} scores per image cannot be probabilities over {classes} classes; set "
                f"top_k to at least {classes}, or output_kind = 'labels'",
                key="top_k",
            )
        # A model's scores of every class are its probabilities (the pipeline softmaxes); without every
        # class, only the top label is an answer.
        self.returns: Literal["labels", "probabilities"] = (
            "labels" if settings["output_kind"] == "labels" or few else "probabilities"
        )
        self.top_k = top_k if top_k is not None or payload == "bytes" else classes
        self.preprocessing = Preprocessing.from_settings(
            settings, requested_size(settings["resize"], task.image_size)
        )
        self._lock = threading.Lock()
        self.answered = 0
        self.unknown: Counter[str] = Counter()  # labels outside the label space, as the server wrote them
        self.unknown_top = 0  # images whose best label was one of those: not answered

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "protocol": "hf-inference",
            "url": self.url,
            "image_payload": s["image_payload"],
            "top_k": self.top_k,
            "image_format": s["image_format"],
            "jpeg_quality": s["jpeg_quality"] if s["image_format"] == "jpeg" else None,
            "returns": self.returns,
        }

    def prepare(self, transport: Transport) -> None:
        """Nothing to learn from the server."""

    def encode(self, images: np.ndarray) -> tuple[bytes, dict[str, str]]:
        fmt = self.settings["image_format"]
        pixels = np.ascontiguousarray(self.preprocessing.pixels(images)[0])
        data = encode_image(pixels, fmt, self.settings["jpeg_quality"])
        if self.settings["image_payload"] == "bytes":
            return data, {"Content-Type": f"image/{fmt}"}
        body: dict[str, Any] = {"inputs": base64.b64encode(data).decode("ascii")}
        if self.top_k is not None:
            body["parameters"] = {"top_k": self.top_k}
        return orjson.dumps(body), {"Content-Type": "application/json"}

    def read(self, content: bytearray, headers: Mapping[str, str]) -> Any:
        return read_json(content)

    def decode(self, document: Any, count: int) -> Answers:
        entries = scored_labels(document)
        classes = len(self.index.names)
        scores = np.zeros(classes, dtype=np.float64)
        seen: dict[int, str] = {}
        unknown: list[str] = []
        best, best_score = NOT_ANSWERED, -np.inf
        for label, score in entries:
            i = self.index.find(label)
            if i is None:
                unknown.append(label)
            elif i in seen:
                name = self.index.names[i]
                raise AnswerError(f"scored the class {name!r} twice ({seen[i]!r} and {label!r})")
            else:
                seen[i] = label
                scores[i] = score
            if score > best_score:
                best, best_score = (NOT_ANSWERED if i is None else i), score
        with self._lock:
            self.answered += 1
            self.unknown.update(unknown)
            self.unknown_top += best == NOT_ANSWERED
        labels = np.array([best], dtype=np.int64)
        if self.returns == "labels":
            return Answers(labels)
        if len(seen) < classes:
            missing = [n for i, n in enumerate(self.index.names) if i not in seen]
            raise AnswerError(
                f"scored {len(seen)} of the {classes} classes (none for {missing[:5]}): ask for every class "
                f"with top_k = {classes}, or set output_kind = 'labels' to read the top label only"
            )
        total = scores.sum()
        if not total > 0:
            raise AnswerError(f"scored every class 0 (got {excerpt(repr(document), 120)})")
        return Answers(labels, (scores / total)[None].astype(np.float32))

    @property
    def remarks(self) -> list[str]:
        """Labels the server answered that are no class of the label space, if any."""
        with self._lock:
            if not self.unknown:
                return []
            shown = "; ".join(f"{excerpt(label, 40)} x{n}" for label, n in self.unknown.most_common(5))
            return [
                f"{sum(self.unknown.values())} labels of {self.answered} answers are not in the label space "
                f"and were not mapped to any class ({shown}); {self.unknown_top} images whose best label "
                "was one of them count as not answered (set `label_names` to the server's class names)"
            ]


def scored_labels(document: Any) -> list[tuple[str, float]]:
    """The `(label, score)` pairs of one image's answer: `[{label, score}, ...]`, that list wrapped in a
    list of one (what a batched pipeline answers), or `{label: score, ...}` (TorchServe's classifier)."""
    if isinstance(document, list) and len(document) == 1 and isinstance(document[0], list):
        document = document[0]
    if isinstance(document, dict) and document and "label" not in document:
        document = [{"label": label, "score": score} for label, score in document.items()]
    if not isinstance(document, list) or not document:
        raise AnswerError(
            'expected a list of {"label": ..., "score": ...} for the image; got '
            + excerpt(repr(document), 120)
        )
    pairs = []
    for entry in document:
        label = entry.get("label") if isinstance(entry, dict) else None
        score = entry.get("score") if isinstance(entry, dict) else None
        if (
            not isinstance(label, str)
            or isinstance(score, bool)
            or not isinstance(score, int | float)
            or not np.isfinite(score)
        ):
            raise AnswerError(
                f'expected {{"label": <text>, "score": <number>}} entries; got {excerpt(repr(entry), 120)}'
            )
        pairs.append((label, float(score)))
    return pairs
