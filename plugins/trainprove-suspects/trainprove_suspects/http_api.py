"""The `http` suspect adapter: a classifier behind someone's HTTP API.

Two request styles share one transport (timeouts, retries, rate limits; see `transport.py`):
- `V2Protocol`, the Open Inference Protocol v2 (KServe, Triton, MLServer): images go as one input tensor
  whose name, datatype and shape are read from the model's metadata; answers come back in `outputs`;
- `JsonProtocol`, any JSON API: a request template with the images as base64 PNG/JPEG or nested arrays,
  and a path into the response where the answers are.
A `predict` call is cut into requests of `images_per_request` images, at most `concurrency` in flight.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol
from urllib.parse import quote

import numpy as np
import orjson

from trainprove_core.errors import ConfigError
from trainprove_core.records import Answers, QueryCost
from trainprove_core.task import Task

from .answers import AnswerError, OutputKind, concatenate, from_labels, from_output, from_scores
from .images import Preprocessing, encode_base64, infer_layout, requested_size, spatial_size
from .options import HTTP_JSON_OPTIONS, HTTP_V2_OPTIONS
from .transport import RetryPolicy, Transport

V2_DATATYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "UINT8": np.uint8}
IMAGES, IMAGE = "$images", "$image"


class RequestStyle(Protocol):
    """What differs between request styles: where to send, how to write images, how to read answers."""

    url: str

    def identity(self) -> dict[str, Any]: ...

    def prepare(self, transport: Transport) -> None: ...

    def encode(self, images: np.ndarray) -> bytes: ...

    def decode(self, document: Any, count: int) -> Answers: ...


def _excerpt(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class V2Protocol:
    """Open Inference Protocol v2: `POST {url}/v2/models/{model}[/versions/{version}]/infer`."""

    def __init__(self, settings: Mapping[str, Any], task: Task, label_space: Sequence[str]) -> None:
        if not settings["model"]:
            raise ConfigError(
                "key 'model' is required with protocol = 'v2' (the model's name on the server)", key="model"
            )
        base = settings["url"].rstrip("/") + "/v2/models/" + quote(settings["model"], safe="")
        if settings["model_version"]:
            base += "/versions/" + quote(settings["model_version"], safe="")
        self.metadata_url = base
        self.url = base + "/infer"
        self.settings = settings
        self.task = task
        self.label_space = label_space
        self.kind: OutputKind = settings["output_kind"]
        self._lock = threading.Lock()
        self._ready = False
        self.input_name: str = settings["input"]
        self.datatype: str = settings["datatype"]
        self.layout: Literal["NCHW", "NHWC"] | str = settings["layout"]
        self.preprocessing: Preprocessing | None = None

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "protocol": "v2",
            "url": self.url,
            "input": s["input"],
            "datatype": s["datatype"],
            "layout": s["layout"],
            "output": s["output"],
        }

    def prepare(self, transport: Transport) -> None:
        """Fill in the input's name, datatype, layout and size from the model metadata (once)."""
        with self._lock:
            if self._ready:
                return
            shape: list[Any] | None = None
            if self.input_name is None or self.datatype is None or self.layout == "auto":
                name, datatype, shape = transport.get_json(self.metadata_url, self._parse_metadata)
                self.input_name = self.input_name or name
                self.datatype = self.datatype or datatype
            if self.datatype not in V2_DATATYPES:
                raise ConfigError(
                    f"{self.metadata_url}: input {self.input_name!r} has datatype {self.datatype}; the http "
                    f"adapter sends images as {', '.join(V2_DATATYPES)}",
                    key="datatype",
                )
            resize = self.settings["resize"]
            size = requested_size(resize, self.task.image_size)
            if shape is not None:
                try:
                    self.layout = infer_layout(shape, self.layout)
                    size = spatial_size(shape, self.layout, resize, self.task.image_size)
                except ValueError as exc:
                    raise ConfigError(
                        f"{self.metadata_url}: input {self.input_name!r}: {exc}", key="layout"
                    ) from None
            self.preprocessing = Preprocessing.from_settings(self.settings, size)
            self._ready = True

    def _parse_metadata(self, document: Any) -> tuple[str, str, list[Any]]:
        inputs = document.get("inputs") if isinstance(document, dict) else None
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
            raise AnswerError(f"the model metadata has no `inputs` list (got {_excerpt(document)})")
        wanted = self.settings["input"]
        chosen = [i for i in inputs if i.get("name") == wanted] if wanted else inputs[:1]
        if not chosen:
            raise AnswerError(
                f"the model has no input {wanted!r}; its inputs: {[i.get('name') for i in inputs]}"
            )
        spec = chosen[0]
        shape = spec.get("shape")
        if not isinstance(shape, list) or len(shape) != 4:
            raise AnswerError(
                f"input {spec.get('name')!r} has shape {shape!r}; expected an image batch of rank 4"
            )
        return str(spec.get("name")), str(spec.get("datatype")), shape

    def encode(self, images: np.ndarray) -> bytes:
        assert self.preprocessing is not None, "prepare() runs before encode()"
        x = self.preprocessing.tensor(images, self.layout, V2_DATATYPES[self.datatype])  # type: ignore[arg-type]
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.input_name,
                    "shape": list(x.shape),
                    "datatype": self.datatype,
                    "data": x.reshape(-1),
                }
            ]
        }
        if self.settings["output"]:
            body["outputs"] = [{"name": self.settings["output"]}]
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, document: Any, count: int) -> Answers:
        outputs = document.get("outputs") if isinstance(document, dict) else None
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
            raise AnswerError(f"the response has no `outputs` list (got {_excerpt(document)})")
        wanted = self.settings["output"]
        chosen = [o for o in outputs if o.get("name") == wanted] if wanted else outputs[:1]
        if not chosen:
            raise AnswerError(
                f"the response has no output {wanted!r}; its outputs: {[o.get('name') for o in outputs]}"
            )
        output = chosen[0]
        name, shape, data = output.get("name"), output.get("shape"), output.get("data")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) for d in shape):
            raise AnswerError(f"output {name!r} has no valid `shape` (got {shape!r})")
        if not isinstance(data, list):
            raise AnswerError(f"output {name!r} has no `data` list")
        values = np.asarray(data).reshape(-1)  # v2 allows nested or flat data, always row-major
        if values.size != int(np.prod(shape)):
            raise AnswerError(f"output {name!r} declares shape {shape} but holds {values.size} values")
        if shape[0] != count:
            raise AnswerError(
                f"answered {shape[0]} results for {count} images (output {name!r}, shape {shape})"
            )
        if self.kind == "labels":
            return from_labels(values.reshape(shape), count, self.label_space)
        return from_scores(values.reshape(shape), self.kind, count, self.label_space)


class JsonProtocol:
    """Any JSON API: a request template holding the images, a response path leading to the answers."""

    def __init__(self, settings: Mapping[str, Any], task: Task, label_space: Sequence[str]) -> None:
        if not settings["response_path"]:
            raise ConfigError(
                "key 'response_path' is required with protocol = 'json' (where the answers are in the "
                'response, e.g. "predictions.*.label")',
                key="response_path",
            )
        if not _contains(settings["request"], IMAGES):
            raise ConfigError(
                f"key 'request' must contain the string \"{IMAGES}\" where the images go", key="request"
            )
        if settings["image_template"] is not None and not _contains(settings["image_template"], IMAGE):
            raise ConfigError(
                f"key 'image_template' must contain the string \"{IMAGE}\"", key="image_template"
            )
        self.url = settings["url"]
        self.settings = settings
        self.label_space = label_space
        self.kind: OutputKind = settings["output_kind"]
        self.path = parse_path(settings["response_path"])
        self.preprocessing = Preprocessing.from_settings(
            settings, requested_size(settings["resize"], task.image_size)
        )

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "protocol": "json",
            "url": self.url,
            "request": s["request"],
            "image_template": s["image_template"],
            "image_format": s["image_format"],
            "data_url": s["data_url"],
            "response_path": s["response_path"],
            "jpeg_quality": s["jpeg_quality"] if s["image_format"] == "jpeg" else None,
        }

    def prepare(self, transport: Transport) -> None:
        """Nothing to learn from the server: the audit file says it all."""

    def encode(self, images: np.ndarray) -> bytes:
        pixels = self.preprocessing.pixels(images)
        fmt = self.settings["image_format"]
        if fmt == "array":
            items: list[Any] = [np.ascontiguousarray(image) for image in pixels]
        else:
            items = encode_base64(pixels, fmt, self.settings["jpeg_quality"], self.settings["data_url"])
        if self.settings["image_template"] is not None:
            items = [fill(self.settings["image_template"], IMAGE, item) for item in items]
        return orjson.dumps(fill(self.settings["request"], IMAGES, items), option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, document: Any, count: int) -> Answers:
        return from_output(extract(document, self.path), self.kind, count, self.label_space)


def parse_path(path: str) -> tuple[str, ...]:
    """`"predictions.*.label"` as steps; the empty string is the whole document."""
    return tuple(path.split(".")) if path else ()


def extract(document: Any, path: Sequence[str], done: str = "") -> Any:
    """The value at `path`: keys of objects, indices of lists, `*` for every element of a list."""
    if not path:
        return document
    step, rest = path[0], path[1:]
    here = f"{done}.{step}" if done else step
    if step == "*":
        if not isinstance(document, list):
            raise AnswerError(
                f"the response has no list at {done or 'its top level'} (got {_excerpt(document)})"
            )
        return [extract(item, rest, f"{done}.{i}" if done else str(i)) for i, item in enumerate(document)]
    if isinstance(document, dict) and step in document:
        return extract(document[step], rest, here)
    if (
        isinstance(document, list)
        and step.lstrip("-").isdigit()
        and -len(document) <= int(step) < len(document)
    ):
        return extract(document[int(step)], rest, here)
    raise AnswerError(f"the response has nothing at {here!r} (response_path); got {_excerpt(document)}")


def fill(template: Any, placeholder: str, value: Any) -> Any:
    """A copy of `template` with every string equal to `placeholder` replaced by `value`."""
    if isinstance(template, dict):
        return {k: fill(v, placeholder, value) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, placeholder, value) for v in template]
    return value if template == placeholder else template


def _contains(template: Any, placeholder: str) -> bool:
    if isinstance(template, dict):
        return any(_contains(v, placeholder) for v in template.values())
    if isinstance(template, list):
        return any(_contains(v, placeholder) for v in template)
    return template == placeholder


def read_token(settings: Mapping[str, Any]) -> str | None:
    """The API token from the environment variable `token_env` names (None when no token is configured)."""
    variable = settings["token_env"]
    if variable is None:
        return None
    token = os.environ.get(variable, "")
    if not token:
        raise ConfigError(
            f"key 'token_env': the environment variable {variable} is not set or empty; export the API token "
            "there before running the audit",
            key="token_env",
        )
    return token


def _check_protocol_keys(settings: Mapping[str, Any]) -> None:
    """A key of the other request style is a mistake worth naming, not something to ignore silently."""
    other = HTTP_JSON_OPTIONS if settings["protocol"] == "v2" else HTTP_V2_OPTIONS
    for option in other:
        if settings[option.name] == option.default:
            continue
        raise ConfigError(
            f"key {option.name!r} applies to protocol = '{'json' if settings['protocol'] == 'v2' else 'v2'}' "
            f"only; this suspect uses protocol = {settings['protocol']!r}",
            key=option.name,
        )


class HttpSuspect:
    """A suspect classifier behind an HTTP API (the `http` adapter)."""

    returns: Literal["labels", "probabilities"]

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        _check_protocol_keys(settings)
        self.label_names: Sequence[str] | None = settings["label_names"]
        label_space = list(self.label_names) if self.label_names is not None else list(task.classes)
        style = V2Protocol if settings["protocol"] == "v2" else JsonProtocol
        self.protocol: RequestStyle = style(settings, task, label_space)
        self.url = self.protocol.url
        self.returns = "labels" if settings["output_kind"] == "labels" else "probabilities"
        self.batch_size = settings["batch_size"]
        self.images_per_request = settings["images_per_request"]
        self.concurrency = settings["concurrency"]
        self.cost = QueryCost(remote=True, budget=settings["budget"])
        token = read_token(settings)
        headers = {}
        if token is not None:
            headers[settings["auth_header"]] = f"{settings['auth_scheme']} {token}".strip()
        self.transport = Transport(
            timeout=settings["timeout"],
            policy=RetryPolicy(settings["retries"], settings["backoff"], settings["max_wait"]),
            connections=self.concurrency,
            headers=headers,
            secret=token,
        )
        # Never the token, nor the name of its variable: only what changes the answers.
        self.identity = {
            "adapter": "http",
            **self.protocol.identity(),
            "output_kind": settings["output_kind"],
            "preprocessing": {
                k: settings[k]
                for k in ("resize", "interpolation", "channel_order", "value_range", "mean", "std")
            },
            "revision": settings["revision"],
        }

    def predict(self, images: np.ndarray) -> Answers:
        """Labels (and probabilities, if the API gives scores) for uint8 RGB images (N, H, W, 3)."""
        self.protocol.prepare(self.transport)
        step = self.images_per_request
        pieces = [images[i : i + step] for i in range(0, len(images), step)]
        workers = min(self.concurrency, len(pieces))
        if workers <= 1:
            return concatenate([self._ask(piece) for piece in pieces])
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trainprove-http")
        try:
            futures = [pool.submit(self._ask, piece) for piece in pieces]
            return concatenate([future.result() for future in futures])
        finally:
            # On a permanent fault, requests not yet sent are dropped rather than paid for.
            pool.shutdown(wait=True, cancel_futures=True)

    def _ask(self, images: np.ndarray) -> Answers:
        body = self.protocol.encode(images)
        return self.transport.post_json(
            self.url, body, lambda document: self.protocol.decode(document, len(images))
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()
