"""Reference servers for the one-image request styles: a classifier behind the Hugging Face Inference
API's image-classification shape (`create_hf_app`) and behind an OpenAI-compatible chat-completions API
that answers in words, as a vision-language model would (`create_openai_app`).

Each serves `predict` (uint8 RGB images (N, H, W, 3) to logits (N, C); `torch_predictor` makes one of a
PyTorch module) in that API's documented request and response shape, and refuses requests that are not
in it. The tests query them on 127.0.0.1 (`serve.serve` runs one); they are also a way to try an audit
file's table. Some answers differ on purpose, chosen by a hash of the image so that every run answers
alike: labels spelt another way, labels outside the label space, and sentences that name no class or
two. Needs the `serve` extra (FastAPI, uvicorn).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from .images import decode_image

Predict = Callable[[np.ndarray], np.ndarray]
TOKENS = re.compile(r"\s*\w+|\s*[^\w\s]+")  # the reference servers' "tokeniser": words and punctuation


def torch_predictor(
    model: Any, mean: Sequence[float] = (0.5,) * 3, std: Sequence[float] = (0.5,) * 3
) -> Predict:
    """`predict` for a PyTorch module taking normalised NCHW float images."""
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def predict(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            return model((x - mean_t) / std_t).numpy()

    return predict


def image_bucket(image: np.ndarray, buckets: int) -> int:
    """A number in [0, buckets) fixed by the image's pixels (which answers are odd on purpose)."""
    return int.from_bytes(hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()[:4], "big") % buckets


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    return z - np.log(np.exp(z).sum())


class Seen:
    """What a reference server was asked and answered, for the tests."""

    def __init__(self) -> None:
        self.requests = 0
        self.odd: dict[str, int] = {}  # answers that differ on purpose, by kind
        self.bodies: list[Any] = []  # the last few request bodies (images left out)
        self._lock = threading.Lock()

    def count(self, body: Any, odd: str | None = None) -> None:
        with self._lock:
            self.requests += 1
            if odd is not None:
                self.odd[odd] = self.odd.get(odd, 0) + 1
            self.bodies = [*self.bodies[-9:], body]


def _app(token: str | None) -> tuple[Any, Callable[..., Any], Callable[..., Any]]:
    from fastapi import FastAPI
    from fastapi.responses import Response

    def respond(document: Any, status: int = 200) -> Any:
        return Response(
            orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json"
        )

    def authorised(request: Any) -> bool:
        return token is None or request.headers.get("authorization") == f"Bearer {token}"

    return FastAPI(), respond, authorised


def create_hf_app(
    predict: Predict,
    class_names: Sequence[str],
    *,
    model_id: str = "org/suspect",
    server_labels: Sequence[str] | None = None,
    unknown_every: int = 0,
    token: str | None = None,
    seen: Seen | None = None,
) -> Any:
    """`POST /models/{model_id}`, as the HF Inference API (and `POST /predictions/{name}`, as TorchServe's
    image classifier, `name` the last part of `model_id`): the image file as the body (any `image/*`
    Content-Type), or `{"inputs": "<base64>", "parameters": {"top_k": k}}`; the answer is
    `[{"label": ..., "score": ...}, ...]`, best first, `top_k` (default 5, the pipeline's) entries.

    `server_labels` are the labels the server writes (default `class_names`). With `unknown_every` = n,
    one image in n (by its hash) gets an extra label outside the label space, scored above every class.
    """
    from fastapi import Request

    app, respond, authorised = _app(token)
    labels = list(server_labels or class_names)
    seen = seen if seen is not None else Seen()

    @app.post("/models/{owner}/{name}")
    async def classify(owner: str, name: str, request: Request) -> Any:
        if not authorised(request):
            return respond({"error": "Invalid credentials in Authorization header"}, 401)
        if f"{owner}/{name}" != model_id:
            return respond({"error": f"Model {owner}/{name} does not exist"}, 404)
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        raw = await request.body()
        top_k, shown = 5, {"content-type": kind}
        try:
            if kind == "application/json":
                body = orjson.loads(raw)
                parameters = body.get("parameters") or {}
                top_k = int(parameters.get("top_k", top_k))
                shown = {k: v for k, v in body.items() if k != "inputs"}
                image = decode_image(body["inputs"])
            elif kind.startswith("image/"):
                image = decode_image(raw)
            else:
                return respond({"error": f"Content type {kind!r} is not an image or JSON"}, 400)
        except (KeyError, ValueError, TypeError, OSError) as exc:
            return respond({"error": f"Malformed request: {type(exc).__name__}"}, 400)
        logits = predict(image[None])[0]
        p = np.exp(log_softmax(logits))
        answer = [{"label": labels[i], "score": float(p[i])} for i in np.argsort(-p)]
        odd = None
        if unknown_every and image_bucket(image, unknown_every) == 0:
            answer.insert(0, {"label": "LABEL_99", "score": 1.0})
            odd = "unknown-label"
        seen.count(shown, odd)
        return respond(answer[:top_k])

    @app.post("/predictions/{name}")
    async def torchserve(name: str, request: Request) -> Any:
        """TorchServe's image_classifier handler: the image file as the body, `{label: probability}`
        of the 5 best classes back (its `topk`)."""
        if not authorised(request):
            return respond(
                {"code": 401, "type": "Unauthorized", "message": "Token Authorization failed"}, 401
            )
        if name != model_id.rsplit("/", 1)[-1]:
            return respond({"code": 404, "type": "ModelNotFoundException", "message": f"{name}"}, 404)
        try:
            image = decode_image(await request.body())
        except (ValueError, OSError) as exc:
            return respond({"code": 400, "type": "BadRequest", "message": type(exc).__name__}, 400)
        p = np.exp(log_softmax(predict(image[None])[0]))
        seen.count({"torchserve": True})
        return respond({labels[i]: float(p[i]) for i in np.argsort(-p)[:5]})

    return app


def create_openai_app(
    predict: Predict,
    class_names: Sequence[str],
    *,
    model_name: str = "suspect-vlm",
    odd_every: int = 0,
    logprobs: bool = True,
    token: str | None = None,
    seen: Seen | None = None,
) -> Any:
    """`POST /v1/chat/completions`, as an OpenAI-compatible server (vLLM's shape): the image as an
    `image_url` data URL part beside a text part; the model's class in `choices[0].message.content`.

    Unconstrained, the answer is a sentence ("The image shows a ring."), the bare name, or the name
    capitalised with a full stop, by the image's hash; `guided_choice` gets the bare name, a
    `response_format` JSON schema `{"label": name}`. With `odd_every` = n, two images in n (by hash)
    get an unconstrained answer that names no class or two. `logprobs` / `top_logprobs` are answered
    per token (words and punctuation), the class token's alternatives being the other class names with
    the model's log-softmax (unless `logprobs` is false: a server that ignores the request for them, as
    some do). `usage` counts tokens roughly as such a server would.
    """
    from fastapi import Request

    app, respond, authorised = _app(token)
    names = list(class_names)
    seen = seen if seen is not None else Seen()

    def error(message: str, status: int = 400) -> Any:
        return respond({"error": {"message": message, "type": "invalid_request_error"}}, status)

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Any:
        if not authorised(request):
            return error("Incorrect API key provided", 401)
        try:
            body = orjson.loads(await request.body())
            parts = body["messages"][-1]["content"]
            texts = [p["text"] for p in parts if p["type"] == "text"]
            urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        except (KeyError, TypeError, IndexError, ValueError):
            return error("messages[-1].content must be a list of text and image_url parts")
        if body.get("model") != model_name:
            return error(f"The model `{body.get('model')}` does not exist.", 404)
        if len(urls) != 1 or not texts or not urls[0].startswith("data:image/"):
            return error("expected one image_url part with a data:image/... URL and a text part")
        image = decode_image(urls[0])
        logits = predict(image[None])[0]
        c = int(logits.argmax())
        name, odd = names[c], None
        schema = (body.get("response_format") or {}).get("json_schema")
        if body.get("guided_choice") is not None:
            before, word, after = "", name, ""
        elif schema is not None:
            before, word, after = '{"label": "', name, '"}'
        else:
            bucket = image_bucket(image, max(odd_every, 10))
            if odd_every and bucket == 0:
                before, word, after, odd = "I am not sure what this shows.", "", "", "no-class"
            elif odd_every and bucket == 1:
                other = names[int(np.argsort(-logits)[1])]
                before, word, after, odd = f"Either a {other} or a ", name, ".", "two-classes"
            elif bucket % 3 == 0:
                before, word, after = "", name, ""
            elif bucket % 3 == 1:
                before, word, after = "", name.capitalize(), "."
            else:
                before, word, after = "The image shows a ", name, "."
        content = before + word + after
        seen.count({k: v for k, v in body.items() if k != "messages"}, odd)
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}}
        choice["finish_reason"] = "stop"
        tokens = TOKENS.findall(content)
        if body.get("logprobs") and logprobs:
            ends = np.cumsum([len(t) for t in tokens])
            at = int(np.searchsorted(ends, len(before), side="right"))  # the token the name starts in
            choice["logprobs"] = {"content": _logprobs(tokens, at, word, names, logits, body)}
        prompt_tokens = sum(len(TOKENS.findall(t)) for t in texts) + 64  # an image costs 64 here
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens)}
        usage["total_tokens"] = prompt_tokens + len(tokens)
        return respond(
            {
                "id": f"chatcmpl-{seen.requests}",
                "object": "chat.completion",
                "model": model_name,
                "choices": [choice],
                "usage": usage,
            }
        )

    return app


def _logprobs(
    tokens: list[str], at: int, word: str, names: list[str], logits: np.ndarray, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per-token logprobs: certain for every token but the class name's first, whose alternatives are
    the classes' names (spelt like the answered one) with the model's log-softmax."""
    top = max(0, min(20, int(body.get("top_logprobs") or 0)))
    logp = log_softmax(logits)
    out = []
    for i, token in enumerate(tokens):
        if i == at and word:
            lead = token[: len(token) - len(token.lstrip())]
            spell = str.capitalize if word[:1].isupper() else str
            alternatives = [
                {"token": lead + TOKENS.findall(spell(names[j]))[0].lstrip(), "logprob": float(logp[j])}
                for j in np.argsort(-logp)[:top]
            ]
            out.append(
                {"token": token, "logprob": float(logp[int(logits.argmax())]), "top_logprobs": alternatives}
            )
        else:
            out.append(
                {"token": token, "logprob": 0.0, "top_logprobs": [{"token": token, "logprob": 0.0}][:top]}
            )
    return out
