"""The token stays secret whichever way a server encodes it: a property-style test (bounded: a fixed
number of seeded cases) in which a loopback server sends the token back in error bodies and headers,
each of its characters independently as is, JSON-escaped (`\\/`, `\\u0061`), percent-encoded or as an HTML
character reference, inside JSON, HTML, plain text or a redirect's URL. Every message the adapter raises,
and what the CLI prints of it, is decoded every way back and searched for any 8 characters of the token."""

from __future__ import annotations

import html
import json
import random
import re
from urllib.parse import unquote

import pytest
from trainprove_suspects.serve import serve

from trainprove_core import secrets
from trainprove_core.errors import TrainproveError

TOKEN = "tp-live/9f8e+7d6c_5b4a.3928~1706f5e4d3c2b1a0=="
CASES = 60


def encode_char(c: str, rng: random.Random) -> str:
    way = rng.choice(["plain", "plain", "json", "percent", "html-dec", "html-hex"])
    if way == "json":
        return "\\/" if c == "/" and rng.random() < 0.5 else f"\\u{ord(c):04{rng.choice('xX')}}"
    if way == "percent":
        return "".join(f"%{b:02{rng.choice('xX')}}" for b in c.encode())
    if way == "html-dec":
        return f"&#{ord(c)};"
    if way == "html-hex":
        return f"&#x{ord(c):{rng.choice('xX')}};"
    return c


def encoded(rng: random.Random) -> str:
    """The token, or a long start of it (an excerpt cut mid-token), each character encoded at random."""
    value = TOKEN if rng.random() < 0.7 else TOKEN[: rng.randint(secrets.PREFIX, len(TOKEN))]
    return "".join(encode_char(c, rng) for c in value)


def decode_every_way(text: str) -> str:
    """Undo JSON escapes, HTML references and percent-encoding, repeatedly (they may be nested)."""
    for _ in range(3):
        text = text.replace("\\\\", "\\")  # repr() doubles a backslash
        text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text).replace("\\/", "/")
        text = unquote(html.unescape(text))
    return text


def leaked(text: str) -> list[str]:
    plain = decode_every_way(text)
    windows = {TOKEN[i : i + secrets.PREFIX] for i in range(len(TOKEN) - secrets.PREFIX + 1)}
    return [w for w in windows if w in plain or w in text]


def response_for(rng: random.Random) -> tuple[int, dict[str, str], bytes, str]:
    secret = encoded(rng)
    kind = rng.choice(["json", "nested-json", "html", "text", "redirect"])
    if kind == "nested-json":  # an upstream's JSON error, quoted inside the gateway's JSON
        inner = '{"message": "bad key ' + secret + '"}'
        return 502, {}, json.dumps({"error": f"upstream said: {inner}"}).encode(), "application/json"
    if kind == "json":
        # Written by hand: the JSON escapes are the document's own (json.dumps would escape them again).
        body = '{"error": {"message": "bad key ' + secret + '", "code": 401}}'
        return rng.choice([400, 401, 403, 500]), {}, body.encode(), "application/json"
    if kind == "html":
        body = f"<html><body><h1>Forbidden</h1><p>key <code>{secret}</code> is revoked</p></body></html>"
        return rng.choice([400, 403, 500]), {}, body.encode(), "text/html"
    if kind == "text":
        return (
            rng.choice([400, 422]),
            {"X-Request-Key": secret},
            f"invalid token: {secret}".encode(),
            "text/plain",
        )
    return 307, {"Location": f"http://198.51.100.7/infer?token={secret}&x=1"}, b"", "text/plain"


@pytest.fixture
def server():
    from fastapi import FastAPI
    from fastapi.responses import Response

    app, state = FastAPI(), {}

    @app.post("/classify")
    def classify() -> Response:
        status, headers, body, media = state["response"]
        return Response(body, status_code=status, headers=headers, media_type=media)

    with serve(app) as url:
        yield url, state


def test_no_encoding_of_the_token_survives_in_any_message(server, http_settings, task, images, monkeypatch):
    from trainprove_suspects import plugin

    from trainprove_core.testing import isolated_plugins

    url, state = server
    monkeypatch.setenv("SUSPECT_TOKEN", TOKEN)
    settings = http_settings(
        url=url + "/classify",
        protocol="json",
        response_path="predictions.*.label",
        output_kind="labels",
        token_env="SUSPECT_TOKEN",
        retries=0,
        images_per_request=4,
    )
    assert TOKEN in secrets.registered()
    factory = isolated_plugins((plugin, "trainprove-suspects")).get("suspect", "http").spec.factory
    rng = random.Random(23)
    tried, clean = 0, 0
    for _ in range(CASES):
        state["response"] = response = response_for(rng)
        adapter = factory(settings, task)
        try:
            with pytest.raises(TrainproveError) as raised:
                adapter.predict(images[:4])
        finally:
            adapter.close()
        message = str(raised.value)
        tried += 1
        assert not leaked(message), (response, message)
        assert not leaked(secrets.redact(message))
        clean += 1
    assert tried == clean == CASES


def test_json_escaped_slashes_are_redacted_through_the_whole_token():
    """The issue's case: a 500 body with the token's `/` JSON-escaped was redacted only up to the
    backslash, and the rest of the token reached report.json, report.html and stderr."""
    secrets.register(TOKEN)
    body = json.dumps({"detail": f"bad key {TOKEN}"}).replace("/", "\\/")
    redacted = secrets.redact(body)
    assert redacted == '{"detail": "bad key <secret>"}', redacted
    assert secrets.redact(json.dumps({"k": TOKEN}, ensure_ascii=True)) == '{"k": "<secret>"}'
    escaped_all = "".join(f"\\u{ord(c):04x}" for c in TOKEN)
    assert secrets.redact(f"x {escaped_all} y") == "x <secret> y"
