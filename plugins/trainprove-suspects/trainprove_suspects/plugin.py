"""Entry point: the `onnx`, `http` and `transformers` suspect adapters (their audit-file keys are in
`options`).

Imported whenever trainprove starts, so it imports nothing heavy: onnxruntime, httpx and Pillow load in
the factories, when an audit actually asks such a suspect; torch and transformers (the `[transformers]`
extra) when a `transformers` suspect is first asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainprove_core import SuspectAdapterSpec, Task, hookimpl

from .options import HTTP_OPTIONS, ONNX_OPTIONS, TRANSFORMERS_OPTIONS


def _onnx(settings: Mapping[str, Any], task: Task):
    from .onnx_model import OnnxSuspect

    return OnnxSuspect(settings, task)


def _http(settings: Mapping[str, Any], task: Task):
    from .http_api import HttpSuspect

    return HttpSuspect(settings, task)


def _transformers(settings: Mapping[str, Any], task: Task):
    from .transformers_model import TransformersSuspect

    return TransformersSuspect(settings, task)


@hookimpl
def trainprove_suspect_adapters() -> list[SuspectAdapterSpec]:
    return [
        SuspectAdapterSpec(
            "onnx", _onnx, "a classifier exported to ONNX, run with onnxruntime (CUDA or CPU)", ONNX_OPTIONS
        ),
        SuspectAdapterSpec(
            "http",
            _http,
            "a classifier behind an HTTP API: Open Inference Protocol v2 or any "
            "JSON API, with retries, rate limits and a query budget",
            HTTP_OPTIONS,
        ),
        SuspectAdapterSpec(
            "transformers",
            _transformers,
            "an image classifier saved with Hugging Face transformers (a save_pretrained folder or a hub "
            "id), with its own image processor",
            TRANSFORMERS_OPTIONS,
        ),
    ]
