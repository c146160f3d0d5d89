"""Open Inference Protocol v2 beyond the basics: the binary tensor extension (negotiated from the
server's metadata, JSON otherwise), models served on flat vectors, and metadata that lists no inputs."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest
from trainprove_suspects.http_api import HttpSuspect
from trainprove_suspects.serve import Faults, create_app, serve

from trainprove_core.errors import InputError

V2 = {"model": "suspect"}


@pytest.fixture(scope="module")
def servers(model, task):
    """The suspect on a server that reads binary tensors, one that reads only JSON, and one on flat
    vectors, each with its own fault log: {kind: (url, faults)}."""
    kinds = {"binary": {}, "json": {"binary": False}, "flat": {"v2_input": "FP32-flat"}}
    with ExitStack() as stack:
        made = {}
        for kind, options in kinds.items():
            faults = Faults()
            app = create_app(model, task.classes, image_size=task.image_size, faults=faults, **options)
            made[kind] = (stack.enter_context(serve(app)), faults)
        yield made


@pytest.mark.parametrize(
    ("server", "encoding", "sent"),
    [
        ("binary", "auto", "binary"),
        ("json", "auto", "json"),
        ("binary", "json", "json"),
        ("binary", "binary", "binary"),
    ],
)
def test_tensors_travel_as_negotiated_with_the_same_answers(
    servers, task, images, expected, helpers, http_settings, server, encoding, sent
):
    url, faults = servers[server]
    faults.reset()
    suspect = HttpSuspect(http_settings(url=url, **V2, tensor_encoding=encoding), task)
    answers = suspect.predict(images)
    assert suspect.protocol.encoding == sent
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)
    assert faults.requests == 3  # no probe: the choice came from the server's metadata


def test_binary_labels_come_back_as_bytes_tensors(servers, task, images, expected, http_settings):
    url, _ = servers["binary"]
    suspect = HttpSuspect(http_settings(url=url, **V2, output="label", output_kind="labels"), task)
    np.testing.assert_array_equal(suspect.predict(images).labels, expected.argmax(1))
    assert suspect.protocol.encoding == "binary"


def test_binary_to_a_server_that_reads_only_json_says_so(servers, task, images, http_settings):
    url, _ = servers["json"]
    suspect = HttpSuspect(http_settings(url=url, **V2, tensor_encoding="binary"), task)
    with pytest.raises(InputError, match=r"HTTP 400 Bad Request: .*binary tensors are not supported"):
        suspect.predict(images)


def test_flat_vectors_from_the_metadata_or_from_the_keys(servers, task, images, expected, http_settings):
    url, _ = servers["flat"]
    from_metadata = HttpSuspect(http_settings(url=url, **V2), task)
    np.testing.assert_array_equal(from_metadata.predict(images).labels, expected.argmax(1))
    assert from_metadata.protocol.layout == "flat"
    keys = {"input": "images", "datatype": "FP32", "layout": "flat", "tensor_encoding": "json"}
    from_keys = HttpSuspect(http_settings(url=url, **V2, **keys), task)
    np.testing.assert_array_equal(from_keys.predict(images).labels, expected.argmax(1))


def test_a_flat_input_of_the_wrong_length_names_the_key(servers, task, images, http_settings):
    url, _ = servers["flat"]
    suspect = HttpSuspect(http_settings(url=url, **V2, resize=8), task)
    with pytest.raises(
        Exception, match=r"\[layout\] .*`resize = 8` but the model takes 768 values \(16x16x3\)"
    ):
        suspect.predict(images)


def test_metadata_without_inputs_says_which_keys_skip_it(task, http_settings, monkeypatch):
    """MLServer's stock runtimes answer `"inputs": []`: the message names the keys that make it unneeded."""
    from trainprove_suspects import http_api

    suspect = HttpSuspect(http_settings(url="http://127.0.0.1:1", **V2), task)
    monkeypatch.setattr(suspect.transport, "get_json", lambda url, parse: parse({"name": "m", "inputs": []}))
    with pytest.raises(http_api.AnswerError, match=r"lists no inputs .*set `input`, `datatype` and `layout`"):
        suspect.protocol.prepare(suspect.transport)
