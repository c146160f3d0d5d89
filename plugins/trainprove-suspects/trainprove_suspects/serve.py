"""A reference server: a PyTorch classifier behind both request styles of the `http` adapter.

It answers the Open Inference Protocol v2 (`GET /v2/models/{name}` metadata, `POST .../infer`) and a
generic JSON API (`POST /classify`, base64 PNG/JPEG or nested arrays in, `predictions` out). `Faults`
makes it misbehave on purpose (errors, rate limits, slow or broken bodies, wrong answers), which is how
the tests and `bench/suspects.py` check the adapter against a real server; it is also a quick way to put
a local model behind HTTP and try an audit file's `[[suspect]]` table. Needs the `serve` extra (FastAPI,
uvicorn, torch).
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at runtime, and
# `Request` is imported inside `create_app`, where string annotations could not be resolved.
import asyncio
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import numpy as np
import orjson

from .answers import softmax
from .images import decode_image

HEADER_LENGTH = "inference-header-content-length"

FAULTS = (
    "http-500",  # Internal Server Error
    "http-503",  # Service Unavailable, with Retry-After
    "http-429",  # Too Many Requests, with Retry-After
    "slow",  # answers correctly, after `slow_seconds`
    "truncated",  # declares the full Content-Length, sends half the body and closes the connection
    "not-json",  # 200 with an HTML error page, as a misconfigured proxy sends
    "wrong-count",  # answers one image fewer than it was sent
    "bad-label",  # answers a label outside the label space (v2 logits: one column too many)
    "echo-auth",  # 200 with a JSON body that is no answer and echoes the Authorization header
    "echo-auth-400",  # 400 Bad Request whose body echoes the Authorization header
    "echo-auth-503",  # 503 (retried) whose body echoes the Authorization header
    "echo-auth-header",  # the right answer, with the Authorization header echoed in a response header
    "redirect-auth",  # 307 to another host, the token in the Location's query string
    "trickle",  # the right answer, one byte every `slow_seconds` / 10 (each read is quick, the whole is not)
    "huge",  # 200 with an endless body of spaces, 1 MiB at a time, no Content-Length
)


class Faults:
    """Misbehaviour to inject: each inference request takes the next scheduled fault, else `always`.

    It also records what the server saw: the number of inference requests, their arrival times, and the
    most that were in flight at once.
    """

    def __init__(self, retry_after: str = "1", slow_seconds: float = 2.0) -> None:
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.always: str | None = None
        self.metadata: str | None = None  # "echo-auth": the metadata echoes the Authorization header
        self.requests = 0
        self.answered = 0  # images the server answered (a 200 it computed), late or cut off ones included
        self.arrivals: list[float] = []  # time.monotonic() of each inference request
        self.max_in_flight = 0
        self._in_flight = 0
        self._healthy_left = 0
        self._queue: deque[str | None] = deque()
        self._lock = threading.Lock()

    def schedule(self, *faults: str | None) -> None:
        """Make the next requests fail with `faults`, one each, in order (None: answer that one)."""
        _check_faults(faults)
        with self._lock:
            self._queue.extend(faults)

    def break_after(self, requests: int, fault: str) -> None:
        """Answer the next `requests` requests, then fail every one with `fault` (a server that dies)."""
        _check_faults([fault])
        with self._lock:
            self._healthy_left = requests
            self.always = fault

    def reset(self) -> None:
        """A healthy server again, with every count back at 0."""
        with self._lock:
            self._queue.clear()
            self.always = None
            self._healthy_left = 0
            self.requests = self.max_in_flight = self.answered = 0
            self.metadata = None
            self.arrivals.clear()

    def take(self) -> str | None:
        """The fault for a request that just arrived (None: answer it properly)."""
        with self._lock:
            self.requests += 1
            self.arrivals.append(time.monotonic())
            if self._healthy_left > 0:
                self._healthy_left -= 1
                return None
            return self._queue.popleft() if self._queue else self.always

    def count_answered(self, images: int) -> None:
        with self._lock:
            self.answered += images

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Count one request in flight for as long as the block runs."""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1


def _check_faults(faults: Sequence[str | None]) -> None:
    unknown = [f for f in faults if f is not None and f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; known: {FAULTS}")


def create_app(
    model: Any,
    class_names: Sequence[str],
    *,
    image_size: int,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    model_name: str = "suspect",
    v2_input: str = "FP32-NCHW",
    faults: Faults | None = None,
    token: str | None = None,
    binary: bool = True,
) -> Any:
    """A FastAPI app serving `model` (a torch module taking normalised NCHW float images).

    `v2_input` is the v2 input tensor: "FP32-NCHW" (the client normalises with `mean`/`std`, like most
    exported models), "FP32-flat" (the same values, each image one vector of H x W x 3 in NHWC order) or
    "UINT8-NHWC" (raw pixels; the server normalises). With `token`, every request needs
    `Authorization: Bearer <token>`. `binary` serves the v2 binary tensor extension (as Triton does);
    without it a binary request gets 400, as from a server that knows only JSON.
    """
    import torch
    from fastapi import FastAPI, Request
    from fastapi.responses import Response, StreamingResponse

    faults = faults or Faults()
    classes = list(class_names)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    datatype, layout = v2_input.split("-")
    v2_shape = {
        "NCHW": [-1, 3, image_size, image_size],
        "NHWC": [-1, image_size, image_size, 3],
        "flat": [-1, image_size * image_size * 3],
    }[layout]
    app = FastAPI()

    def logits_of(x: np.ndarray) -> np.ndarray:
        if layout == "flat":
            x = x.reshape(len(x), image_size, image_size, 3).transpose(0, 3, 1, 2)
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        if tensor.dtype == torch.uint8:  # raw NHWC pixels: normalise here
            tensor = (tensor.permute(0, 3, 1, 2).float() / 255 - mean_t) / std_t
        with torch.no_grad():
            return model(tensor).numpy()

    def json_bytes(document: Any) -> bytes:
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)

    def json_response(document: Any, status: int = 200) -> Response:
        return Response(json_bytes(document), status, media_type="application/json")

    async def answer(request: Request, compute: Callable[[Any, str | None], Any]) -> Response:
        """Check the token, apply this request's fault, and answer with `compute(body, fault)` (a
        document, or a (body, headers) pair already encoded)."""
        auth = request.headers.get("authorization")
        if token is not None and auth != f"Bearer {token}":
            return json_response({"error": "missing or invalid credentials"}, 401)
        with faults.serving():
            fault = faults.take()
            if fault == "http-500":
                return json_response({"error": "internal error"}, 500)
            if fault in ("http-503", "http-429"):
                return Response(b"busy", int(fault[-3:]), headers={"Retry-After": faults.retry_after})
            if fault == "not-json":
                return Response(b"<html><body>502 Bad Gateway</body></html>", 200, media_type="text/html")
            if fault == "echo-auth":
                return json_response({"you_sent": auth})
            if fault in ("echo-auth-400", "echo-auth-503"):
                return json_response({"error": f"cannot serve {auth}"}, int(fault[-3:]))
            if fault == "redirect-auth":
                secret = (auth or "").removeprefix("Bearer ")
                where = f"http://198.51.100.7/v2/infer?token={secret}&auth={quote(auth or '', safe='')}"
                return Response(b"", 307, headers={"Location": where})
            if fault == "huge":

                async def endless():
                    while True:
                        yield b" " * 2**20

                return StreamingResponse(endless(), media_type="application/json")
            if fault == "slow":
                await asyncio.sleep(faults.slow_seconds)
            answered = compute(await request.body(), request.headers, fault)
            if isinstance(answered, Response):
                return answered
            body, headers = answered if isinstance(answered, tuple) else (json_bytes(answered), {})
            if fault == "echo-auth-header":
                headers = {**headers, "X-You-Sent": auth or ""}
            if fault == "trickle":

                async def drip():
                    for i in range(len(body)):
                        await asyncio.sleep(faults.slow_seconds / 10)
                        yield body[i : i + 1]

                return StreamingResponse(drip(), media_type="application/json", headers=headers)
            if fault == "truncated":
                return Response(
                    body[: len(body) // 2],
                    headers={**headers, "content-length": str(len(body))},
                    media_type="application/json",
                )
            return Response(body, media_type="application/json", headers=headers)

    def v2_answer(raw: bytes, headers: Any, fault: str | None) -> Any:
        split = headers.get(HEADER_LENGTH)
        if split is not None and not binary:
            return json_response({"error": "binary tensors are not supported"}, 400)
        body = orjson.loads(raw[: int(split)] if split is not None else raw)
        tensor = body["inputs"][0]
        dtype = np.float32 if datatype == "FP32" else np.uint8
        if split is not None:
            values = np.frombuffer(raw[int(split) :], dtype=np.dtype(dtype).newbyteorder("<")).copy()
        else:
            values = np.asarray(tensor["data"], dtype=dtype)
        logits = logits_of(values.reshape(tensor["shape"]))
        faults.count_answered(len(logits))
        labels = [classes[i] for i in logits.argmax(1)]
        if fault == "wrong-count":
            logits, labels = logits[:-1], labels[:-1]
        elif fault == "bad-label":
            logits = np.concatenate([logits, logits[:, :1]], axis=1)
            labels[0] = "not-a-class"
        outputs = [
            {"name": "logits", "datatype": "FP32", "shape": list(logits.shape), "data": logits.reshape(-1)},
            {"name": "label", "datatype": "BYTES", "shape": [len(labels)], "data": labels},
        ]
        wanted = [o["name"] for o in body.get("outputs", [])]
        document = {
            "model_name": model_name,
            "outputs": [o for o in outputs if not wanted or o["name"] in wanted],
        }
        if split is None or not (body.get("parameters") or {}).get("binary_data_output"):
            return document
        blobs = []
        for output in document["outputs"]:
            data = output.pop("data")
            if output["datatype"] == "BYTES":
                blob = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in data)
            else:
                blob = np.ascontiguousarray(data, dtype="<f4").tobytes()
            output["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        header = orjson.dumps(document)
        return header + b"".join(blobs), {HEADER_LENGTH: str(len(header))}

    def json_answer(raw: bytes, headers: Any, fault: str | None) -> Any:
        body = orjson.loads(raw)
        items = body.get("images", body.get("instances"))
        logits = logits_of(np.stack([_pixels(item) for item in items]))
        faults.count_answered(len(logits))
        predictions = [
            {
                "label": classes[int(row.argmax())],
                "index": int(row.argmax()),
                "logits": row,
                "probabilities": p,
            }
            for row, p in zip(logits, softmax(logits), strict=True)
        ]
        if fault == "wrong-count":
            predictions = predictions[:-1]
        elif fault == "bad-label":
            predictions[0] = {**predictions[0], "label": "not-a-class", "index": len(classes) + 7}
        return {"predictions": predictions}

    @app.get("/v2")
    async def v2_server_metadata() -> Response:
        extensions = ["binary_tensor_data"] if binary else []
        return json_response({"name": "trainprove-reference", "version": "1", "extensions": extensions})

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str, request: Request) -> Response:
        if name != model_name:
            return json_response({"error": f"unknown model {name}"}, 404)
        if faults.metadata == "echo-auth":
            return json_response({"name": model_name, "you_sent": request.headers.get("authorization")})
        return json_response(
            {
                "name": model_name,
                "platform": "pytorch",
                "inputs": [{"name": "images", "datatype": datatype, "shape": v2_shape}],
                "outputs": [
                    {"name": "logits", "datatype": "FP32", "shape": [-1, len(classes)]},
                    {"name": "label", "datatype": "BYTES", "shape": [-1]},
                ],
            }
        )

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, request: Request) -> Response:
        if name != model_name:
            return json_response({"error": f"unknown model {name}"}, 404)
        return await answer(request, v2_answer)

    @app.post("/classify")
    async def classify(request: Request) -> Response:
        return await answer(request, json_answer)

    return app


def _pixels(item: Any) -> np.ndarray:
    """One image of a /classify request: base64 (or data: URL) PNG/JPEG, {"b64": ...}, or nested arrays."""
    if isinstance(item, dict):
        item = item["b64"]
    if isinstance(item, str):
        return decode_image(item)
    return np.asarray(item, dtype=np.uint8)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` with uvicorn on a free port of 127.0.0.1 in a background thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the reference server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
