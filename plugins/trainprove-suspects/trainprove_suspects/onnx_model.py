"""The `onnx` suspect adapter: a classifier exported to ONNX, run with onnxruntime.

What the file says about its input (name, layout, dtype, fixed or dynamic batch and size) is read from the
model; what it does not say (resizing, mean/std, channel order, value range, what the output means) comes
from the audit file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trainprove_core import Answers, ConfigError, InputError, QueryCost, Task, file_sha256, threads

from .answers import AnswerError, OutputKind, concatenate, from_output
from .images import Preprocessing, infer_layout, spatial_size

INPUT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
}


def choose_providers(device: str) -> list[str]:
    """onnxruntime execution providers for `device`: "auto" is CUDA when this onnxruntime has it, else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ConfigError(
            "device = 'cuda' but this onnxruntime has no CUDA provider (available: "
            f"{', '.join(available)}); install onnxruntime-gpu or use device = 'auto'",
            key="device",
        )
    return ["CPUExecutionProvider"]


class OnnxSuspect:
    """A suspect classifier in an ONNX file (the `onnx` adapter)."""

    returns: Literal["labels", "probabilities"]

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        import onnxruntime as ort

        self.path = Path(settings["model"])
        if not self.path.is_file():
            raise InputError(f"ONNX model {self.path} does not exist (key 'model')")
        options = ort.SessionOptions()
        # the threads policy: the cores the load leaves idle, unless `threads` fixes it (0: the policy)
        options.intra_op_num_threads = threads.onnx_threads(settings["threads"] or 0)
        options.inter_op_num_threads = 1
        providers = choose_providers(settings["device"])
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for unreadable models
            raise InputError(f"ONNX model {self.path} cannot be loaded by onnxruntime: {exc}") from None

        self.label_names: Sequence[str] | None = settings["label_names"]
        self._label_space = list(self.label_names) if self.label_names is not None else list(task.classes)
        self.output_kind: OutputKind = settings["output_kind"]
        self.returns = "labels" if self.output_kind == "labels" else "probabilities"
        self.batch_size = settings["batch_size"]
        self.cost = QueryCost(remote=False)

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(
                f"ONNX model {self.path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                "the onnx adapter feeds one image tensor"
            )
        spec = inputs[0]
        self.input_name = spec.name
        if spec.type not in INPUT_DTYPES:
            raise InputError(
                f"ONNX model {self.path}: input {spec.name!r} is {spec.type}; "
                f"supported: {', '.join(INPUT_DTYPES)}"
            )
        self.input_dtype = INPUT_DTYPES[spec.type]
        if len(spec.shape) != 4:
            raise InputError(
                f"ONNX model {self.path}: input {spec.name!r} has shape {spec.shape}; expected rank 4"
            )
        try:
            self.layout = infer_layout(spec.shape, settings["layout"])
            size = spatial_size(spec.shape, self.layout, settings["resize"], task.image_size)
            self.preprocessing = Preprocessing.from_settings(settings, size)
        except ValueError as exc:
            raise InputError(f"ONNX model {self.path}: input {spec.name!r}: {exc}") from None
        # A batch axis fixed at export (often 1) is fed exactly that many images at a time, padded at the end.
        self.fixed_batch = spec.shape[0] if isinstance(spec.shape[0], int) and spec.shape[0] > 0 else None

        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = settings["output"] or outputs[0]
        if self.output_name not in outputs:
            raise InputError(
                f"ONNX model {self.path} has no output {self.output_name!r}; "
                f"its outputs: {', '.join(outputs)}"
            )
        self.identity = {
            "adapter": "onnx",
            "model_sha256": file_sha256(self.path),
            "output": self.output_name,
            "output_kind": self.output_kind,
            "layout": self.layout,
            "preprocessing": self.preprocessing.identity(),
        }

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on."""
        return self.session.get_providers()

    def predict(self, images: np.ndarray) -> Answers:
        """Labels (and probabilities, unless the model outputs labels) for uint8 RGB images (N, H, W, 3)."""
        step = self.fixed_batch or max(1, self.batch_size)
        return concatenate([self._run(images[i : i + step]) for i in range(0, len(images), step)])

    def _run(self, images: np.ndarray) -> Answers:
        count = len(images)
        x = self.preprocessing.tensor(images, self.layout, self.input_dtype)
        if self.fixed_batch and count < self.fixed_batch:
            pad = np.repeat(x[-1:], self.fixed_batch - count, axis=0)
            x = np.concatenate([x, pad])
        try:
            (output,) = self.session.run([self.output_name], {self.input_name: x})
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors carry the reason in their message
            raise InputError(f"ONNX model {self.path} failed on a batch of shape {x.shape}: {exc}") from None
        try:
            return from_output(output[:count], self.output_kind, count, self._label_space)
        except AnswerError as exc:
            raise InputError(f"ONNX model {self.path}, output {self.output_name!r}: {exc}") from None
