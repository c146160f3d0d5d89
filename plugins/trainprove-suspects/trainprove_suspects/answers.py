"""Turning a model's raw output (logits, probabilities or labels) into checked `Answers`.

Both adapters read outputs they do not control, so every shape, count and label is checked here, and a
misfit raises `AnswerError` with a sentence saying what was wrong; the adapter adds where it came from
(the model file or the URL) when it turns it into an `InputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from trainprove_core import Answers

OutputKind = Literal["logits", "probabilities", "labels"]
OUTPUT_KINDS = ("logits", "probabilities", "labels")


class AnswerError(ValueError):
    """A model answered something that does not fit the request or the label space."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in float64 so large logits neither overflow nor lose the small classes."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def from_scores(scores: Any, kind: OutputKind, count: int, label_names: Sequence[str]) -> Answers:
    """Answers from per-image score vectors (`kind` "logits" or "probabilities"), shape (count, C)."""
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise AnswerError(f"expected {kind} as numbers, one row per image; got {_excerpt(scores)}") from None
    if array.ndim != 2 or len(array) != count:
        raise AnswerError(f"answered {kind} of shape {array.shape} for {count} images")
    if array.shape[1] != len(label_names):
        raise AnswerError(
            f"answered {array.shape[1]} {kind} per image, but the label space has {len(label_names)} classes "
            "(set `label_names` to the model's classes in output order)"
        )
    if not np.isfinite(array).all():
        raise AnswerError(f"answered non-finite {kind} (NaN or infinity)")
    probabilities = softmax(array) if kind == "logits" else array
    return Answers(probabilities.argmax(axis=1), probabilities.astype(np.float32))


def from_labels(values: Any, count: int, label_names: Sequence[str]) -> Answers:
    """Answers from one label per image: indices into `label_names`, or the class names themselves."""
    if isinstance(values, np.ndarray):
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise AnswerError(
                f"answered labels of shape {values.shape} where one label per image was expected "
                "(if these are scores, set `output_kind` to logits or probabilities)"
            )
        flat = values.tolist()
    elif isinstance(values, list):
        flat = values
    else:
        raise AnswerError(f"expected a list of labels, one per image; got {_excerpt(values)}")
    if len(flat) != count:
        raise AnswerError(f"answered {len(flat)} labels for {count} images")
    index = {name: i for i, name in enumerate(label_names)}
    labels = np.empty(count, dtype=np.int64)
    for i, value in enumerate(flat):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            if value not in index:
                raise AnswerError(
                    f"answered the label {value!r}, which is not in the label space {_names(label_names)}"
                )
            labels[i] = index[value]
        elif _is_integral(value):
            if not 0 <= int(value) < len(label_names):
                raise AnswerError(
                    f"answered the label index {int(value)}, outside the label space "
                    f"0..{len(label_names) - 1} {_names(label_names)}"
                )
            labels[i] = int(value)
        else:
            raise AnswerError(f"answered {value!r} as a label; expected a class index or a class name")
    return Answers(labels)


def from_output(output: Any, kind: OutputKind, count: int, label_names: Sequence[str]) -> Answers:
    """Answers from a model output of the declared `kind`."""
    if kind == "labels":
        return from_labels(output, count, label_names)
    return from_scores(output, kind, count, label_names)


def concatenate(parts: Sequence[Answers]) -> Answers:
    """The answers of consecutive pieces of one batch, in order."""
    labels = np.concatenate([p.labels for p in parts])
    if all(p.probabilities is not None for p in parts):
        return Answers(labels, np.concatenate([p.probabilities for p in parts]))
    return Answers(labels)


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    # JSON has one number type: a label index may arrive as 2.0.
    return isinstance(value, float) and value.is_integer()


def _names(label_names: Sequence[str]) -> str:
    shown = list(label_names[:8])
    return repr(shown)[:-1] + (", ...]" if len(label_names) > 8 else "]")


def _excerpt(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
