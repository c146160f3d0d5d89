"""The `hf-inference` request style against a real uvicorn server on 127.0.0.1 that serves a real timm
model in the Hugging Face Inference API's image-classification shape (`serve_styles.create_hf_app`):
one image a request, as base64 JSON or the image file, `[{label, score}, ...]` back."""

from __future__ import annotations

import numpy as np
import pytest
from styles_audit import StyleAudits, decisions
from trainprove_suspects.http_api import HttpSuspect
from trainprove_suspects.serve import serve
from trainprove_suspects.serve_styles import Seen, create_hf_app, torch_predictor

from trainprove_core.errors import ConfigError, InputError

TOKEN = "hf_test_token_0c9d2e"
SPELT = ["Zero", "ONE ", "two"]  # the server's labels: the task's classes in another case and spacing
HF = {"protocol": "hf-inference", "token_env": "HF_TOKEN"}


@pytest.fixture(scope="module")
def seen():
    return Seen()


@pytest.fixture(scope="module")
def servers(model, task, seen):
    """A clean server, and one where one image in 8 gets a label outside the label space, scored best."""
    predict = torch_predictor(model)
    with (
        serve(create_hf_app(predict, task.classes, server_labels=SPELT, token=TOKEN, seen=seen)) as clean,
        serve(create_hf_app(predict, task.classes, server_labels=SPELT, unknown_every=8, seen=seen)) as odd,
    ):
        yield {"clean": clean + "/models/org/suspect", "odd": odd + "/models/org/suspect"}


@pytest.fixture
def ask(servers, task, http_settings, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    made = []

    def build(server="clean", **table):
        suspect = HttpSuspect(http_settings(**{"url": servers[server], **HF, **table}), task)
        made.append(suspect)
        return suspect

    yield build
    for suspect in made:
        suspect.close()


def test_scores_of_every_class_are_the_probabilities(ask, images, expected, seen, helpers):
    suspect = ask()
    answers = suspect.predict(images)
    assert suspect.returns == "probabilities" and suspect.images_per_request == 1
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)
    assert seen.bodies[-1] == {"parameters": {"top_k": 3}}  # every class asked for, images left out
    assert suspect.usage.sent == suspect.usage.paid == len(images)
    assert suspect.remarks == []


def test_the_image_file_as_the_body_and_the_top_label_only(ask, images, expected, seen):
    suspect = ask(image_payload="bytes", output_kind="labels", image_format="jpeg")
    answers = suspect.predict(images[:4])  # the test images are noise: JPEG changes their answers
    assert suspect.returns == "labels" and answers.probabilities is None
    assert seen.bodies[-1] == {"content-type": "image/jpeg"} and len(answers.labels) == 4

    answers = ask(image_payload="bytes", output_kind="labels").predict(images)  # PNG: lossless
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))


def test_torchserve_s_image_classifier_is_the_same_exchange(servers, ask, images, expected, helpers):
    url = servers["clean"].replace("/models/org/suspect", "/predictions/suspect")
    suspect = ask(image_payload="bytes", url=url)  # {label: probability} of the 5 best, 3 classes here
    answers = suspect.predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)


def test_fewer_scores_than_classes_give_the_top_label(ask, images, expected, seen):
    suspect = ask(top_k=1)
    answers = suspect.predict(images[:8])
    assert suspect.returns == "labels" and answers.probabilities is None
    assert seen.bodies[-1] == {"parameters": {"top_k": 1}}
    np.testing.assert_array_equal(answers.labels, expected[:8].argmax(1))


def test_a_label_outside_the_label_space_is_counted_never_mapped(ask, images, expected, seen):
    seen.odd.clear()
    suspect = ask(server="odd", top_k=4)  # one label more than the classes, so every class is scored
    answers = suspect.predict(images)
    unknown = answers.labels == -1
    assert unknown.sum() == seen.odd["unknown-label"] > 0
    np.testing.assert_array_equal(answers.labels[~unknown], expected.argmax(1)[~unknown])
    (remark,) = suspect.remarks
    assert f"{unknown.sum()} labels of {len(images)} answers are not in the label space" in remark
    assert "'LABEL_99'" in remark

    with pytest.raises(InputError, match=r"scored 2 of the 3 classes .*top_k = 3"):
        ask(server="odd").predict(images)  # three scores asked: the unknown label takes one's place


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"image_payload": "bytes", "top_k": 3}, "no parameters travel with it"),
        ({"top_k": 2, "output_kind": "probabilities"}, "2 scores per image cannot be probabilities"),
        ({"image_format": "array"}, "sends an image file"),
        ({"images_per_request": 4}, "one image a request"),
        ({"label_names": ["zero", "One", "ONE"]}, "are the same once case"),
        ({"response_path": "x"}, "key 'response_path' applies to protocol = 'json' only"),
        ({"prompt": "{classes}?"}, "key 'prompt' applies to protocol = 'openai-chat' only"),
    ],
)
def test_configuration_mistakes_name_the_key(task, http_settings, table, message):
    with pytest.raises(ConfigError, match=message):
        HttpSuspect(
            http_settings(url="http://127.0.0.1:1/models/m", **{"protocol": "hf-inference", **table}), task
        )


def test_identity_follows_what_changes_answers(task, http_settings):
    def identity(**table):
        return HttpSuspect(http_settings(url="http://h:1/m", protocol="hf-inference", **table), task).identity

    base = identity()
    assert base["protocol"] == "hf-inference" and base["top_k"] == 3
    assert identity(concurrency=1, timeout=9.0) == base
    assert identity(top_k=1) != base and identity(image_payload="bytes") != base


@pytest.mark.slow
def test_an_audit_over_hf_inference_gives_the_local_verdicts(tmp_path_factory):
    kit = StyleAudits(tmp_path_factory.mktemp("hf-audit"))
    local = kit.audit(kit.local_tables(), kit.root / "local")
    with kit.served(create_hf_app, server_labels=[c.upper() for c in kit.task.classes]) as urls:
        remote = [
            {"name": name, "use": "http", "protocol": "hf-inference", "url": url + "/models/org/suspect"}
            for name, url in urls.items()
        ]
        served = kit.audit(remote, kit.root / "hf-inference")
    assert decisions(served) == decisions(local)
    assert len(decisions(local)) == 4
    for ours, theirs in zip(served["suspects"], local["suspects"], strict=True):
        assert ours["accuracy"] == theirs["accuracy"], ours["name"]
        assert (ours["returns"], ours["unanswered"]) == ("probabilities", 0)
        assert (ours["queries_sent"], ours["queries_paid"]) == (120, 120)
