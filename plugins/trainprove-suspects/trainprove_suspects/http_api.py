"""The `http` suspect adapter: a classifier behind someone's HTTP API.

Request styles share one transport (timeouts, retries, rate limits; see `transport.py`):
- `V2Protocol`, the Open Inference Protocol v2 (KServe, Triton, MLServer): images go as one input tensor
  whose name, datatype and shape are read from the model's metadata; answers come back in `outputs`;
- `JsonProtocol`, any JSON API: a request template with the images as base64 PNG/JPEG or nested arrays,
  and a path into the response where the answers are;
- `hf_inference.HfInferenceProtocol` and `openai_chat.OpenAIChatProtocol`, one image per request, in
  their own modules.
A `predict` call is cut into requests of `images_per_request` images, at most `concurrency` in flight.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import numpy as np
import orjson

from trainprove_core import Answers, ConfigError, InputError, QueryCost, QueryUsage, Task, secrets

from .answers import AnswerError, OutputKind, concatenate, from_labels, from_output, from_scores
from .images import Preprocessing, encode_base64, infer_layout, requested_size, spatial_size
from .ledger import Ledger
from .options import STYLE_OPTIONS
from .transport import MalformedBody, RetryPolicy, Transport, read_json

V2_DATATYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "UINT8": np.uint8}
IMAGES, IMAGE = "$images", "$image"


class RequestStyle(Protocol):
    """What differs between request styles: where to send, how to write images, how to read answers."""

    url: str

    def identity(self) -> dict[str, Any]: ...

    def prepare(self, transport: Transport) -> None: ...

    def encode(self, images: np.ndarray) -> tuple[bytes, dict[str, str]]: ...

    def read(self, content: bytearray, headers: Mapping[str, str]) -> Any: ...

    def decode(self, document: Any, count: int) -> Answers: ...


def _excerpt(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


HEADER_LENGTH = "Inference-Header-Content-Length"
"""The v2 binary tensor extension: a body is this many bytes of JSON, then the tensors' raw bytes."""
NUMERIC = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
}
JSON_HEADERS = {"Content-Type": "application/json"}
BINARY_EXTENSION = "binary_tensor_data"
"""The name a v2 server lists in its metadata's `extensions` when it reads binary tensors."""
SKIP_METADATA = (
    "set `input`, `datatype` and `layout` in this suspect's table to skip the metadata (e.g. "
    'input = "input-0", datatype = "FP32", layout = "flat" for a model on flat vectors)'
)


class V2Protocol:
    """Open Inference Protocol v2: `POST {url}/v2/models/{model}[/versions/{version}]/infer`.

    `tensor_encoding` picks how the input tensor travels: "json" (a list of numbers), "binary" (the v2
    binary tensor extension: JSON header, then the raw little-endian bytes; smaller and many times faster
    to write), or "auto": binary when the server's metadata (`GET {url}/v2`) lists the extension
    (Triton does; MLServer 1.7 does not, and answers a binary request with HTTP 500), else JSON. Answers
    are read in either encoding."""

    def __init__(self, settings: Mapping[str, Any], task: Task, label_space: Sequence[str]) -> None:
        if not settings["model"]:
            raise ConfigError(
                "key 'model' is required with protocol = 'v2' (the model's name on the server)", key="model"
            )
        self.server_url = settings["url"].rstrip("/") + "/v2"
        base = self.server_url + "/models/" + quote(settings["model"], safe="")
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
        self.layout: str = settings["layout"]
        self.preprocessing: Preprocessing | None = None
        self.encoding: str = settings["tensor_encoding"]

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
                    size = spatial_size(shape, self.layout, resize, self.task.image_size)  # type: ignore[arg-type]
                except ValueError as exc:
                    raise ConfigError(
                        f"{self.metadata_url}: input {self.input_name!r}: {exc}", key="layout"
                    ) from None
            self.preprocessing = Preprocessing.from_settings(self.settings, size)
            if self.encoding == "auto":
                self.encoding = "binary" if self._has_binary_extension(transport) else "json"
            self._ready = True

    def _has_binary_extension(self, transport: Transport) -> bool:
        """Whether the server says it reads binary tensors (a server without metadata: no)."""
        try:
            return transport.get_json(self.server_url, lambda d: BINARY_EXTENSION in _extensions(d))
        except InputError:
            return False

    def _parse_metadata(self, document: Any) -> tuple[str, str, list[Any]]:
        inputs = document.get("inputs") if isinstance(document, dict) else None
        if isinstance(inputs, list) and not inputs:
            raise AnswerError(
                'the model metadata lists no inputs (`"inputs": []`, what MLServer\'s stock runtimes '
                f"answer); {SKIP_METADATA}"
            )
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise AnswerError(
                f"the model metadata has no `inputs` list (got {_excerpt(document)}); {SKIP_METADATA}"
            )
        wanted = self.settings["input"]
        chosen = [i for i in inputs if i.get("name") == wanted] if wanted else inputs[:1]
        if not chosen:
            raise AnswerError(
                f"the model has no input {wanted!r}; its inputs: {[i.get('name') for i in inputs]}"
            )
        spec = chosen[0]
        shape = spec.get("shape")
        if not isinstance(shape, list) or len(shape) not in (2, 4):
            raise AnswerError(
                f"input {spec.get('name')!r} has shape {shape!r}; expected an image batch of rank 4 or a "
                f"batch of flat vectors of rank 2; {SKIP_METADATA}"
            )
        return str(spec.get("name")), str(spec.get("datatype")), shape

    def tensor(self, images: np.ndarray) -> np.ndarray:
        """The input tensor for `images`."""
        assert self.preprocessing is not None, "prepare() runs before encode()"
        return self.preprocessing.tensor(images, self.layout, V2_DATATYPES[self.datatype])  # type: ignore[arg-type]

    def encode(self, images: np.ndarray, binary: bool | None = None) -> tuple[bytes, dict[str, str]]:
        """The request body for `images` and its headers, binary or JSON (default: as negotiated)."""
        x = self.tensor(images)
        binary = self.encoding == "binary" if binary is None else binary
        tensor: dict[str, Any] = {"name": self.input_name, "shape": list(x.shape), "datatype": self.datatype}
        body: dict[str, Any] = {"inputs": [tensor]}
        if self.settings["output"]:
            body["outputs"] = [{"name": self.settings["output"]}]
        if not binary:
            tensor["data"] = x.reshape(-1)
            return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), JSON_HEADERS
        raw = x.astype(x.dtype.newbyteorder("<"), copy=False).tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        body["parameters"] = {"binary_data_output": True}
        for output in body.get("outputs", []):
            output["parameters"] = {"binary_data": True}
        header = orjson.dumps(body)
        return header + raw, {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}

    def read(self, content: bytearray, headers: Mapping[str, str]) -> Any:
        """The response document; outputs sent as binary tensors get their `data` filled in."""
        declared = headers.get(HEADER_LENGTH)
        if declared is None:
            return read_json(content)
        if not declared.isdigit() or int(declared) > len(content):
            raise MalformedBody(f"{HEADER_LENGTH} is {declared!r} for a body of {len(content)} bytes")
        split = int(declared)
        document = read_json(memoryview(content)[:split])
        offset = split
        for output in document.get("outputs", []) if isinstance(document, dict) else []:
            size = (
                (output.get("parameters") or {}).get("binary_data_size") if isinstance(output, dict) else None
            )
            if size is None:
                continue
            if not isinstance(size, int) or offset + size > len(content):
                raise MalformedBody(
                    f"output {output.get('name')!r}: binary_data_size {size!r} overruns the body"
                )
            output["data"] = binary_values(bytes(content[offset : offset + size]), output.get("datatype"))
            offset += size
        return document

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
        if not isinstance(data, list | np.ndarray):
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


def _extensions(document: Any) -> list[Any]:
    extensions = document.get("extensions") if isinstance(document, dict) else None
    return extensions if isinstance(extensions, list) else []


def binary_values(raw: bytes, datatype: Any) -> np.ndarray | list[str]:
    """A binary tensor's values: little-endian numbers, or BYTES as 4-byte-length-prefixed strings."""
    if datatype == "BYTES":
        values, i = [], 0
        while i + 4 <= len(raw):
            (length,) = struct.unpack_from("<I", raw, i)
            values.append(raw[i + 4 : i + 4 + length].decode("utf-8", "replace"))
            i += 4 + length
        return values
    if datatype not in NUMERIC:
        raise MalformedBody(f"binary output of datatype {datatype!r}, which the http adapter cannot read")
    dtype = np.dtype(NUMERIC[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise MalformedBody(f"binary output of {len(raw)} bytes is not a whole number of {datatype} values")
    return np.frombuffer(raw, dtype=dtype)


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

    def read(self, content: bytearray, headers: Mapping[str, str]) -> Any:
        return read_json(content)

    def encode(self, images: np.ndarray) -> tuple[bytes, dict[str, str]]:
        pixels = self.preprocessing.pixels(images)
        fmt = self.settings["image_format"]
        if fmt == "array":
            items: list[Any] = [np.ascontiguousarray(image) for image in pixels]
        else:
            items = encode_base64(pixels, fmt, self.settings["jpeg_quality"], self.settings["data_url"])
        if self.settings["image_template"] is not None:
            items = [fill(self.settings["image_template"], IMAGE, item) for item in items]
        body = orjson.dumps(fill(self.settings["request"], IMAGES, items), option=orjson.OPT_SERIALIZE_NUMPY)
        return body, JSON_HEADERS

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
    """The API token from the environment variable `token_env` names (None when no token is configured),
    declared secret (`trainprove_core.secrets`) before anything can quote it."""
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
    secrets.register(token)
    return token


def _check_protocol_keys(settings: Mapping[str, Any]) -> None:
    """A key of another request style is a mistake worth naming, not something to ignore silently."""
    protocol = settings["protocol"]
    own = {option.name for option in STYLE_OPTIONS[protocol]}
    for options in STYLE_OPTIONS.values():
        for option in options:
            if option.name in own or settings[option.name] == option.default:
                continue
            first, *more = [s for s, keys in STYLE_OPTIONS.items() if option in keys]
            also = f" (and {', '.join(repr(s) for s in more)})" if more else ""
            raise ConfigError(
                f"key {option.name!r} applies to protocol = {first!r} only{also}; this suspect uses "
                f"protocol = {protocol!r}",
                key=option.name,
            )


def _request_style(protocol: str) -> type:
    """The `RequestStyle` class of a `protocol` (the styles of other modules load when asked for)."""
    if protocol == "hf-inference":
        from .hf_inference import HfInferenceProtocol

        return HfInferenceProtocol
    if protocol == "openai-chat":
        from .openai_chat import OpenAIChatProtocol

        return OpenAIChatProtocol
    return V2Protocol if protocol == "v2" else JsonProtocol


class HttpSuspect:
    """A suspect classifier behind an HTTP API (the `http` adapter)."""

    returns: Literal["labels", "probabilities"]

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        _check_protocol_keys(settings)
        self.label_names: Sequence[str] | None = settings["label_names"]
        label_space = list(self.label_names) if self.label_names is not None else list(task.classes)
        self.protocol: RequestStyle = _request_style(settings["protocol"])(settings, task, label_space)
        self.url = self.protocol.url
        # A style that asks one image at a time, or reads answers its own way, says so (`returns`,
        # `images_per_request`, and a `ledger` that counts what its API bills).
        self.returns = getattr(self.protocol, "returns", None) or (
            "labels" if settings["output_kind"] == "labels" else "probabilities"
        )
        self.batch_size = settings["batch_size"]
        self.images_per_request = getattr(self.protocol, "images_per_request", settings["images_per_request"])
        self.concurrency = settings["concurrency"]
        self.ledger = getattr(self.protocol, "ledger", None) or Ledger(settings["budget"], label_space)
        # A budget of tokens is the ledger's to keep; the core's check before sending counts images.
        images_budget = None if settings["cost"] == "tokens" else settings["budget"]
        self.cost = QueryCost(remote=True, budget=images_budget)
        token = read_token(settings)
        if token is not None and any(form in settings["url"] for form in secrets.forms(token)):
            raise ConfigError(
                f"key 'url' holds the token that {settings['token_env']} names: the URL is part of the cache "
                "key and of the reports, so it must not carry a credential (the token goes in a header)",
                key="url",
            )
        headers = {}
        if token is not None:
            headers[settings["auth_header"]] = value = f"{settings['auth_scheme']} {token}".strip()
            secrets.register(value)
        self.transport = Transport(
            timeout=settings["timeout"],
            policy=RetryPolicy(settings["retries"], settings["backoff"], settings["max_wait"]),
            connections=self.concurrency,
            headers=headers,
            ledger=self.ledger,
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

    @property
    def remarks(self) -> list[str]:
        """What this run's answers had that the report should say (unparseable answers, unknown labels)."""
        return list(getattr(self.protocol, "remarks", ()))

    @property
    def usage(self) -> QueryUsage:
        """Images sent and paid for in this run (`trainprove_core.records.QueryUsage`)."""
        return self.ledger.usage

    def attach(self, folder: Path) -> None:
        """Keep the counts (for the budget, over all runs) and every answered request in `folder`."""
        self.ledger.attach(folder)

    def predict(self, images: np.ndarray) -> Answers:
        """Labels (and probabilities, if the API gives scores) for uint8 RGB images (N, H, W, 3).

        Each request's answers are kept in the ledger as they arrive, so when a request fails for good
        the answered ones are not asked (nor paid for) again by the next run."""
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
        kept = self.ledger.recall(images)
        if kept is not None:
            return kept
        answers = self._send(images, self.protocol.encode(images))
        self.ledger.keep(images, answers)
        return answers

    def _send(self, images: np.ndarray, request: tuple[bytes, dict[str, str]]) -> Answers:
        body, headers = request
        return self.transport.post(
            self.url,
            body,
            headers=headers,
            images=len(images),
            read=self.protocol.read,
            parse=lambda document: self.protocol.decode(document, len(images)),
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()
