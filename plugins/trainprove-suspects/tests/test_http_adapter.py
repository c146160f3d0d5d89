"""The `http` adapter against real uvicorn servers on 127.0.0.1 serving a real timm model, healthy and
misbehaving: transient faults must give the healthy answers, permanent ones an error naming URL and fault."""

from __future__ import annotations

import io
import json
import re
import socket
import time

import numpy as np
import pytest
from trainprove_suspects.http_api import HttpSuspect
from trainprove_suspects.serve import Faults, create_app, serve

from trainprove_core.errors import ConfigError, InputError

TOKEN = "tp-test-token-6b1f0c"
V2 = {"model": "suspect"}
JSON_LABELS = {"protocol": "json", "response_path": "predictions.*.label", "output_kind": "labels"}
JSON_INDICES = {"protocol": "json", "response_path": "predictions.*.index", "output_kind": "labels"}
JSON_ARRAYS = {
    "protocol": "json",
    "response_path": "predictions.*.probabilities",
    "output_kind": "probabilities",
    "image_format": "array",
}
STYLES = {"v2": V2, "json": JSON_LABELS}


@pytest.fixture(scope="module")
def faults():
    return Faults(retry_after="1", slow_seconds=3.0)


@pytest.fixture(scope="module")
def server(model, task, faults):
    """The suspect behind both protocols, wanting a bearer token."""
    with serve(
        create_app(model, task.classes, image_size=task.image_size, faults=faults, token=TOKEN)
    ) as url:
        yield url


@pytest.fixture(autouse=True)
def healthy(faults, monkeypatch):
    faults.reset()
    faults.retry_after, faults.slow_seconds = "1", 3.0
    monkeypatch.setenv("SUSPECT_TOKEN", TOKEN)
    yield
    faults.reset()


@pytest.fixture
def ask(server, task, http_settings):
    """Build an http suspect for the test server from an audit-file table (the json style's path added)."""
    made = []

    def build(**table):
        url = server + "/classify" if table.get("protocol") == "json" else server
        suspect = HttpSuspect(http_settings(url=url, token_env="SUSPECT_TOKEN", **table), task)
        made.append(suspect)
        return suspect

    yield build
    for suspect in made:
        suspect.close()


def test_v2_logits_answer_like_torch(ask, images, expected, faults, helpers):
    suspect = ask(**V2)
    answers = suspect.predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)
    assert faults.requests == 3  # 40 images, 16 per request
    assert suspect.returns == "probabilities" and suspect.cost.remote


def test_v2_label_output_by_name(ask, images, expected):
    answers = ask(**V2, output="label", output_kind="labels").predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    assert answers.probabilities is None


@pytest.mark.parametrize(
    "table",
    [JSON_LABELS, JSON_INDICES, JSON_ARRAYS],
    ids=["png-labels", "png-indices", "array-probabilities"],
)
def test_json_api_answers_like_torch(ask, images, expected, helpers, table):
    answers = ask(**table).predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    if table["output_kind"] == "probabilities":
        np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)


def test_json_api_jpeg_data_urls_in_a_request_template(ask, images, model, helpers):
    from PIL import Image

    suspect = ask(
        **JSON_LABELS,
        request={"instances": "$images", "top_k": 1},
        image_template={"b64": "$image"},
        image_format="jpeg",
        jpeg_quality=90,
        data_url=True,
    )
    decoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
        decoded.append(np.asarray(Image.open(buffer).convert("RGB")))
    expected = helpers.torch_logits(model, np.stack(decoded))
    np.testing.assert_array_equal(suspect.predict(images).labels, expected.argmax(1))


def test_uint8_nhwc_server_with_its_own_class_order(model, images, expected, task, http_settings):
    """The server's classes are the task's reversed; labels come back as names and map by `label_names`."""
    reversed_classes = list(task.classes[::-1])
    app = create_app(model, reversed_classes, image_size=task.image_size, v2_input="UINT8-NHWC")
    with serve(app) as url:
        table = {**V2, "url": url, "output": "label", "output_kind": "labels"}
        own_order = HttpSuspect(http_settings(**table, label_names=reversed_classes), task)
        np.testing.assert_array_equal(own_order.predict(images).labels, expected.argmax(1))
        task_order = HttpSuspect(http_settings(**table), task)
        np.testing.assert_array_equal(task_order.predict(images).labels, 2 - expected.argmax(1))
        assert own_order.protocol.datatype == "UINT8" and own_order.protocol.layout == "NHWC"


TRANSIENT = ["http-500", "http-503", "http-429", "slow", "truncated", "not-json"]


@pytest.mark.parametrize("fault", TRANSIENT)
@pytest.mark.parametrize("style", list(STYLES))
def test_transient_faults_give_the_healthy_answers(ask, images, expected, faults, style, fault):
    suspect = ask(**STYLES[style], timeout=1.0)
    faults.schedule(fault)
    answers = suspect.predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    assert suspect.transport.counters.retries >= 1
    assert faults.requests >= 4  # 3 requests, one of them sent again
    if fault in ("http-429", "http-503"):  # the retry waited for Retry-After: 1
        assert max(faults.arrivals) - min(faults.arrivals) >= 1.0


PERMANENT = [
    (
        "http-500",
        r"HTTP 500 Internal Server Error: '\{\"error\":\"internal error\"\}' \(gave up after 2 attempts\)",
    ),
    ("http-429", r"HTTP 429 Too Many Requests: 'busy' \(gave up after 2 attempts\)"),
    ("slow", r"no answer within the 0\.5 s timeout \(gave up after 2 attempts\)"),
    ("truncated", r"the response was cut off or malformed .*\(gave up after 2 attempts\)"),
    (
        "not-json",
        r"the body is not valid JSON .*'<html><body>502 Bad Gateway</body></html>'\) \(gave up after 2",
    ),
]


@pytest.mark.parametrize(("fault", "message"), PERMANENT, ids=[p[0] for p in PERMANENT])
@pytest.mark.parametrize("style", list(STYLES))
def test_persistent_faults_stop_with_the_url_and_the_fault(
    ask, images, faults, server, style, fault, message
):
    suspect = ask(**STYLES[style], timeout=0.5, retries=1, images_per_request=40)
    faults.always = fault
    with pytest.raises(InputError, match=re.escape(suspect.url) + ": " + message):
        suspect.predict(images)
    assert faults.requests == 2


WRONG_ANSWERS = [
    ("v2", V2, "wrong-count", r"answered 39 results for 40 images \(output 'logits', shape \[39, 3\]\)"),
    ("v2", V2, "bad-label", r"answered 4 logits per image, but the label space has 3 classes"),
    (
        "v2-labels",
        {**V2, "output": "label", "output_kind": "labels"},
        "bad-label",
        r"answered the label 'not-a-class', which is not in the label space \['zero', 'one', 'two'\]",
    ),
    ("json", JSON_LABELS, "wrong-count", r"answered 39 labels for 40 images"),
    ("json", JSON_INDICES, "bad-label", r"answered the label index 10, outside the label space 0\.\.2"),
    ("json-arrays", JSON_ARRAYS, "wrong-count", r"answered probabilities of shape \(39, 3\) for 40 images"),
]


@pytest.mark.parametrize(
    ("name", "table", "fault", "message"), WRONG_ANSWERS, ids=[f"{w[0]}-{w[2]}" for w in WRONG_ANSWERS]
)
def test_wrong_answers_are_permanent_faults(ask, images, faults, name, table, fault, message):
    suspect = ask(**table, images_per_request=40)
    faults.schedule(fault)
    with pytest.raises(InputError, match=re.escape(suspect.url) + ": " + message):
        suspect.predict(images)
    assert faults.requests == 1  # not retried: a server that miscounts will miscount again


def test_retry_after_beyond_max_wait_is_not_waited_for(ask, images, faults):
    faults.retry_after = "120"
    faults.always = "http-429"
    with pytest.raises(InputError, match=r"asks to retry after 120 s, more than max_wait = 5 s"):
        ask(**V2, max_wait=5.0, images_per_request=40).predict(images)
    assert faults.requests == 1


def test_concurrency_is_bounded(model, task, images, http_settings):
    # A server of its own: slow requests left over from other tests would count as in flight.
    faults = Faults(slow_seconds=0.5)
    faults.always = "slow"
    with serve(create_app(model, task.classes, image_size=task.image_size, faults=faults)) as url:
        suspect = HttpSuspect(
            http_settings(url=url, **V2, concurrency=2, images_per_request=10, timeout=10.0), task
        )
        suspect.predict(images)
    assert faults.max_in_flight == 2 and faults.requests == 4


def test_the_token_stays_secret(ask, server, task, http_settings, monkeypatch, images):
    suspect = ask(**V2)
    assert TOKEN not in json.dumps(suspect.identity) and "SUSPECT_TOKEN" not in json.dumps(suspect.identity)
    monkeypatch.setenv("SUSPECT_TOKEN", "not-the-token")
    with pytest.raises(InputError, match=r"HTTP 401 Unauthorized.*check `token_env`") as raised:
        ask(**V2).predict(images)
    assert "not-the-token" not in str(raised.value)
    monkeypatch.delenv("SUSPECT_TOKEN")
    with pytest.raises(ConfigError, match="environment variable SUSPECT_TOKEN is not set"):
        ask(**V2)
    with pytest.raises(InputError, match="HTTP 401"):
        HttpSuspect(http_settings(url=server, **V2), task).predict(images)
    monkeypatch.setenv("SUSPECT_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match=r"key 'url' holds the token that SUSPECT_TOKEN names"):
        HttpSuspect(http_settings(url=f"{server}/?key={TOKEN}", **V2, token_env="SUSPECT_TOKEN"), task)


@pytest.mark.parametrize("style", ["v2", "json"])
def test_a_body_that_echoes_the_token_never_shows_it(ask, faults, images, style):
    """A 200 whose JSON is no answer and quotes the request's headers: the error names the fault, and
    neither the token nor a truncated start of it appears (the quoted document is cut at 120 characters)."""
    faults.schedule("echo-auth")
    with pytest.raises(InputError) as raised:
        ask(**STYLES[style]).predict(images)
    message = str(raised.value)
    assert "<token>" in message or "response" in message
    assert TOKEN[:8] not in message, message


def test_a_trickling_server_is_a_timeout_not_a_hang(model, task, images, http_settings):
    """One byte every 0.2 s: every read is quick, so httpx's per-read timeout never fires; the whole
    answer must still arrive within `timeout`."""
    faults = Faults(slow_seconds=2.0)
    faults.always = "trickle"
    with serve(create_app(model, task.classes, image_size=task.image_size, faults=faults)) as url:
        suspect = HttpSuspect(http_settings(url=url, **V2, timeout=1.0, retries=1, backoff=0.01), task)
        started = time.monotonic()
        with pytest.raises(InputError, match=r"no complete answer within the 1 s timeout .*gave up after 2"):
            suspect.predict(images[:2])
    assert time.monotonic() - started < 30


def test_a_dead_endpoint_is_a_connection_fault(task, http_settings, images):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free now, and nothing listens on it once closed
    suspect = HttpSuspect(http_settings(url=f"http://127.0.0.1:{port}", retries=1, **V2), task)
    with pytest.raises(InputError, match=rf"127\.0\.0\.1:{port}/v2/models/suspect: connection failed"):
        suspect.predict(images)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"protocol": "v2"}, "key 'model' is required with protocol = 'v2'"),
        ({"protocol": "json"}, "key 'response_path' is required with protocol = 'json'"),
        (
            {"protocol": "json", "response_path": "x", "model": "m"},
            "key 'model' applies to protocol = 'v2' only",
        ),
        ({**V2, "image_format": "jpeg"}, "key 'image_format' applies to protocol = 'json' only"),
        (
            {"protocol": "json", "response_path": "x", "request": {"inputs": []}},
            'must contain the string "\\$images"',
        ),
        ({**V2, "images_per_request": 0}, "key 'images_per_request' must be at least 1"),
    ],
)
def test_configuration_mistakes_name_the_key(task, http_settings, table, message):
    with pytest.raises(ConfigError, match=message):
        HttpSuspect(http_settings(url="http://127.0.0.1:1", **table), task)


def test_identity_changes_with_what_changes_answers_only(task, http_settings):
    def identity(**table):
        return HttpSuspect(http_settings(url="http://h:1", **{**V2, **table}), task).identity

    base = identity()
    assert identity(timeout=9.0, concurrency=1, retries=0, budget=10, images_per_request=2) == base
    assert identity(revision="2025-01") != base
    assert identity(model="other") != base
    assert identity(mean=[0.0, 0.0, 0.0]) != base
