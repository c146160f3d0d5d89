"""The small parts the adapters are built from: PNG writing, response paths, templates, retry timing."""

from __future__ import annotations

import email.utils
import io
import random
import time

import numpy as np
import pytest
from PIL import Image
from trainprove_suspects.answers import AnswerError
from trainprove_suspects.http_api import extract, fill, parse_path
from trainprove_suspects.images import encode_png, infer_layout
from trainprove_suspects.transport import RetryPolicy, retry_after_seconds


@pytest.mark.parametrize("shape", [(16, 16, 3), (7, 23, 3), (300, 200, 3)])
def test_png_written_directly_decodes_to_the_same_pixels(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(image))) as decoded:
        assert decoded.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(decoded), image)


def test_response_paths():
    doc = {"predictions": [{"label": "cat", "scores": [0.1, 0.9]}, {"label": "dog", "scores": [0.8, 0.2]}]}
    assert extract(doc, parse_path("predictions.*.label")) == ["cat", "dog"]
    assert extract(doc, parse_path("predictions.1.scores.0")) == 0.8
    assert extract(doc, parse_path("predictions.-1.label")) == "dog"
    assert extract(doc, parse_path("")) is doc
    with pytest.raises(AnswerError, match=r"nothing at 'predictions\.0\.labels'"):
        extract(doc, parse_path("predictions.*.labels"))
    with pytest.raises(AnswerError, match="no list at predictions.0.label"):
        extract(doc, parse_path("predictions.0.label.*"))


def test_request_templates_are_filled_without_changing_the_template():
    template = {"instances": "$images", "options": {"top_k": 1, "tags": ["$images-not", "x"]}}
    filled = fill(template, "$images", [1, 2])
    assert filled == {"instances": [1, 2], "options": {"top_k": 1, "tags": ["$images-not", "x"]}}
    assert template["instances"] == "$images"


def test_layout_is_read_from_the_channel_axis():
    assert infer_layout(["batch", 3, 32, 32], "auto") == "NCHW"
    assert infer_layout([-1, 32, 32, 3], "auto") == "NHWC"
    assert infer_layout([1, 3, 3, 3], "NHWC") == "NHWC"
    with pytest.raises(ValueError, match="set `layout`"):
        infer_layout([1, 3, 3, 3], "auto")


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < retry_after_seconds(in_a_minute) <= 60
    assert retry_after_seconds(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0


def test_backoff_doubles_with_jitter_up_to_max_wait():
    policy = RetryPolicy(retries=8, backoff=0.5, max_wait=3.0)
    rng = random.Random(0)
    for attempt, full in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        waits = [policy.delay(attempt, rng) for _ in range(200)]
        assert full / 2 <= min(waits) and max(waits) <= full
        assert max(waits) - min(waits) > full / 4  # jittered, not fixed
