"""The `npz-linear` suspect: logits = W @ pixels + b, where pixels are the image resized to `side` x `side`
grey values in [0, 1]. Small enough to read in a minute, complete enough to show every part of the
adapter contract (`trainprove_core.records.SuspectAdapter`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trainprove_core import Answers, InputError, QueryCost, Task


class NpzLinearSuspect:
    """A linear classifier stored as an .npz file (arrays W, b and classes; no pickles)."""

    returns = "probabilities"  # predict() fills Answers.probabilities, so -Ent and -Sim tests can run

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        path = Path(settings["weights"])
        try:
            with np.load(path, allow_pickle=False) as data:
                self.weights, self.bias = data["W"].astype(np.float64), data["b"].astype(np.float64)
                classes = [str(c) for c in data["classes"]]
        except (OSError, KeyError, ValueError) as exc:
            # An error the user can act on: name the file and what was expected of it.
            raise InputError(f"{path}: not an npz-linear model (arrays W, b, classes): {exc}") from None
        self.side = settings["side"]
        if self.weights.shape != (len(classes), self.side * self.side) or self.bias.shape != (len(classes),):
            raise InputError(
                f"{path}: W is {self.weights.shape} and b {self.bias.shape}; with {len(classes)} classes "
                f"and side = {self.side} they must be ({len(classes)}, {self.side**2}) and ({len(classes)},)"
            )
        # The model's own class order: the core maps it onto the task's by name.
        self.label_names = classes
        self.batch_size = settings["batch_size"]
        self.cost = QueryCost(remote=False)  # a local model: no budget to spend
        # Keys the answer cache: everything that changes answers (the weights, the preprocessing), nothing
        # that does not (batch size), and never a credential.
        self.identity = {
            "adapter": "npz-linear",
            "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "side": self.side,
        }

    def predict(self, images: np.ndarray) -> Answers:
        """uint8 RGB images (N, H, W, 3) at the task's size -> labels (indices into `label_names`)."""
        from PIL import Image

        grey = np.stack(
            [
                np.asarray(Image.fromarray(im).convert("L").resize((self.side, self.side), Image.BILINEAR))
                for im in images
            ]
        )
        logits = grey.reshape(len(images), -1) / 255.0 @ self.weights.T + self.bias
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = z / z.sum(axis=1, keepdims=True)
        return Answers(probabilities.argmax(axis=1), probabilities.astype(np.float32))
