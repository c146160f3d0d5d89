"""The `openai-chat` request style against a real uvicorn server on 127.0.0.1 that speaks the
OpenAI-compatible chat-completions API (`serve_styles.create_openai_app`): it decodes the data-URL image,
runs a real timm model and answers in words (a sentence, the bare name, "Ring."), a few answers naming no
class or two on purpose, with logprobs when asked and `usage` in tokens."""

from __future__ import annotations

import numpy as np
import pytest
from styles_audit import StyleAudits, decisions
from trainprove_suspects.http_api import HttpSuspect
from trainprove_suspects.serve import serve
from trainprove_suspects.serve_styles import Seen, create_openai_app, torch_predictor

from trainprove_core.errors import BudgetExceeded, ConfigError, InputError

TOKEN = "sk-test-9f2c81d04e"
CHAT = {"protocol": "openai-chat", "model": "suspect-vlm"}


@pytest.fixture(scope="module")
def seen():
    return Seen()


@pytest.fixture(scope="module")
def servers(model, task, seen):
    """A server whose answers are sometimes unparseable (about 1 in 10 of the images), and one that
    offers no logprobs."""
    predict = torch_predictor(model)
    with (
        serve(create_openai_app(predict, task.classes, odd_every=20, token=TOKEN, seen=seen)) as odd,
        serve(create_openai_app(predict, task.classes, logprobs=False, token=TOKEN, seen=seen)) as plain,
    ):
        yield {"odd": odd + "/v1/chat/completions", "plain": plain + "/v1/chat/completions"}


@pytest.fixture
def ask(servers, task, http_settings, monkeypatch):
    monkeypatch.setenv("OPENAI_TOKEN", TOKEN)
    made = []

    def build(server="odd", **table):
        # The server runs a real torch model in its event loop: on a loaded machine one request can take
        # longer than the kit's 2 s, and a retry then counts a request sent twice. These tests check how
        # answers are read, not how slowness is handled (test_http_bounds does that), so they wait longer.
        table = {**CHAT, "token_env": "OPENAI_TOKEN", "timeout": 60.0, **table}
        suspect = HttpSuspect(http_settings(url=servers[server], **table), task)
        made.append(suspect)
        return suspect

    yield build
    for suspect in made:
        suspect.close()


def test_answers_in_words_are_read_as_classes_and_the_rest_counted(ask, images, expected, seen):
    seen.odd.clear()
    suspect = ask()
    answers = suspect.predict(images)
    assert suspect.returns == "labels" and answers.probabilities is None
    unanswered = answers.labels == -1
    assert unanswered.sum() == sum(seen.odd.values()) > 0
    np.testing.assert_array_equal(answers.labels[~unanswered], expected.argmax(1)[~unanswered])
    unparseable, fallback, tokens = suspect.remarks
    assert unparseable.startswith(f"{unanswered.sum()} of 40 answers named no class, or more than one")
    assert "'I am not sure what this shows.'" in unparseable or "'Either a " in unparseable
    assert "were read by the fallback" in fallback and "tokens used in this run" in tokens
    body = seen.bodies[-1]
    assert body == {"model": "suspect-vlm", "max_tokens": 32, "temperature": 0.0}
    assert suspect.usage.sent == suspect.usage.paid == 40


def test_without_the_fallback_a_sentence_is_unparseable(ask, images, expected):
    answers = ask(fallback="none").predict(images)
    words = ask().predict(images)
    assert (answers.labels == -1).sum() > (words.labels == -1).sum()
    read = answers.labels >= 0
    np.testing.assert_array_equal(answers.labels[read], expected.argmax(1)[read])


@pytest.mark.parametrize("constrain", ["guided_choice", "json_schema"])
def test_a_constrained_answer_is_always_a_class(ask, images, expected, seen, constrain):
    suspect = ask(constrain=constrain)
    answers = suspect.predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    body = seen.bodies[-1]
    if constrain == "guided_choice":
        assert body["guided_choice"] == ["zero", "one", "two"]
    else:
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["label"]["enum"] == ["zero", "one", "two"]
    assert [r for r in suspect.remarks if "not answered" in r] == []


@pytest.mark.parametrize("constrain", ["none", "json_schema"])
def test_logprobs_of_the_class_token_are_the_probabilities(ask, images, expected, seen, helpers, constrain):
    suspect = ask(logprobs=True, constrain=constrain)
    answers = suspect.predict(images)
    assert suspect.returns == "probabilities" and seen.bodies[-1]["top_logprobs"] == 3
    read = answers.labels >= 0
    np.testing.assert_array_equal(answers.labels[read], expected.argmax(1)[read])
    np.testing.assert_allclose(answers.probabilities[read], helpers.softmax(expected)[read], atol=1e-5)
    assert not any("offered no alternative" in r for r in suspect.remarks)


def test_logprobs_asked_of_a_server_that_offers_none_is_an_error(ask, images):
    with pytest.raises(InputError, match="has no `logprobs.content`.*set logprobs = false"):
        ask(server="plain", logprobs=True).predict(images[:2])


def test_a_budget_of_tokens_is_kept_over_runs(ask, images, tmp_path):
    first = ask(cost="tokens", budget=900, constrain="guided_choice")
    first.attach(tmp_path)
    with pytest.raises(BudgetExceeded, match=r"tokens were used over all runs .* budget of 900 tokens"):
        first.predict(images)
    spent = first.ledger.tokens_total
    assert 0 < spent <= 900 + 4 * first.ledger.costliest  # at most `concurrency` answers past it
    assert first.cost.budget is None  # the core's check before sending counts images, not tokens
    again = ask(cost="tokens", budget=100_000, constrain="guided_choice")
    again.attach(tmp_path)
    assert again.ledger.tokens_total == spent
    again.predict(images)
    assert again.ledger.tokens_total > spent
    assert again.usage.sent < len(images)  # what the first run was answered is not asked again
    assert (tmp_path / "usage.log").read_text().count("tokens ") == len(images)


def test_parsing_exact_normalised_fallback_and_unparseable(ask):
    parse = ask().protocol.parse
    assert parse("two")[:1] == (2,)
    assert parse("  TWO.\n")[:2] == (2, 2)
    assert parse("The image shows a one.") == (1, 18, True)
    assert parse("It is a one, not a two.") is None  # two classes named
    assert parse("ones and zeros") is None  # whole words only
    assert parse("twofold") is None and parse("") is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"model": None}, "key 'model' is required with protocol = 'openai-chat'"),
        ({"prompt": "What is this?"}, "must contain {classes}"),
        ({"top_logprobs": 5}, "needs logprobs = true"),
        ({"output_kind": "probabilities"}, "set logprobs = true"),
        ({"top_k": 3}, "key 'top_k' applies to protocol = 'hf-inference' only"),
        ({"tensor_encoding": "json"}, "key 'tensor_encoding' applies to protocol = 'v2' only"),
        ({"image_format": "array"}, "sends an image file"),
    ],
)
def test_configuration_mistakes_name_the_key(task, http_settings, table, message):
    with pytest.raises(ConfigError, match=message):
        HttpSuspect(http_settings(url="http://127.0.0.1:1/v1/chat/completions", **{**CHAT, **table}), task)


def test_identity_follows_what_changes_answers(task, http_settings):
    def identity(**table):
        return HttpSuspect(
            http_settings(url="http://h:1/v1/chat/completions", **{**CHAT, **table}), task
        ).identity

    base = identity()
    assert base["prompt"].startswith("Which one of these classes") and "zero, one, two" in base["prompt"]
    assert identity(cost="tokens", budget=5, concurrency=1) == base
    for change in ({"model": "other"}, {"prompt": "{classes}?"}, {"constrain": "guided_choice"}):
        assert identity(**change) != base
    assert identity(logprobs=True) != base and identity(logprobs=True, top_logprobs=2) != identity(
        logprobs=True
    )


@pytest.mark.slow
def test_an_audit_over_openai_chat_gives_the_local_verdicts(tmp_path_factory):
    kit = StyleAudits(tmp_path_factory.mktemp("chat-audit"))
    local = kit.audit(kit.local_tables(), kit.root / "local")
    seen = Seen()
    with kit.served(create_openai_app, odd_every=200, seen=seen) as urls:
        remote = [
            {
                "name": name,
                "use": "http",
                "protocol": "openai-chat",
                "url": url + "/v1/chat/completions",
                "model": "suspect-vlm",
                "logprobs": True,
            }
            for name, url in urls.items()
        ]
        served = kit.audit(remote, kit.root / "openai-chat")
    assert decisions(served) == decisions(local)
    assert len(decisions(local)) == 4
    unanswered = [s["unanswered"] for s in served["suspects"]]
    assert sum(unanswered) == sum(seen.odd.values()) > 0 and max(unanswered) <= 6  # 95% must answer
    for ours, theirs in zip(served["suspects"], local["suspects"], strict=True):
        assert ours["returns"] == "probabilities" and ours["queries_sent"] == 120
        assert ours["accuracy"] <= theirs["accuracy"] <= ours["accuracy"] + ours["unanswered"] / 120
        if ours["unanswered"]:
            assert ours["remarks"][0].startswith(f"{ours['unanswered']} of 120 answers named no class")


def test_an_answer_that_quotes_the_token_is_redacted_in_the_remarks(ask):
    suspect = ask()
    document = {"choices": [{"message": {"content": f"Bearer {TOKEN}"}}], "usage": {"total_tokens": 3}}
    assert suspect.protocol.decode(document, 1).labels.tolist() == [-1]
    (remark, _) = suspect.remarks
    assert TOKEN not in remark and "<secret>" in remark
