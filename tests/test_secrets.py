"""trainprove_core.secrets: what is redacted, in which forms, and what is left alone."""

from __future__ import annotations

import base64
from urllib.parse import quote

from trainprove_core import secrets
from trainprove_core.config import validate_table
from trainprove_core.records import Option


def test_a_secret_its_forms_and_long_prefixes_are_masked():
    token = "sk-unit-3c1d9e7f5a2b4680"
    secrets.register(token)
    basic = base64.b64encode(f"user:{token}".encode()).decode()
    for text in (
        f"Authorization: Bearer {token}",
        f"Basic {base64.b64encode(f'{token}:'.encode()).decode()}",
        f"Basic {base64.b64encode(token.encode()).decode().rstrip('=')}",
        f"Location: http://elsewhere/?t={quote(token, safe='')}",
        f"excerpt cut mid-token: {token[:9]}...",
    ):
        redacted = secrets.redact(text)
        assert secrets.MASK in redacted and token[:8] not in redacted, (text, redacted)
    # A user name before the token shifts its base64: only the exact pair, registered, is masked.
    secrets.register(basic)
    assert basic not in secrets.redact(f"Basic {basic}")
    assert secrets.redact("nothing secret here") == "nothing secret here"
    assert secrets.redact(token[:7]) == token[:7]  # shorter than PREFIX: too common to mask


def test_redact_all_walks_a_report():
    token = "sk-report-8e2a61fb"
    secrets.register(token)
    report = {"errors": [f"said {token}"], token: {"n": 3, "list": (f"x{token}", 1.5, None)}}
    assert secrets.redact_all(report) == {
        "errors": ["said <secret>"],
        "<secret>": {"n": 3, "list": ["x<secret>", 1.5, None]},
    }


def test_options_declare_their_secrets_when_a_table_is_validated(monkeypatch):
    monkeypatch.setenv("UNIT_API_TOKEN", "env-held-4f0b7c2e91")
    options = (
        Option("password", "str", None, secret=True),
        Option("token_env", "str", None, secret="env"),
        Option("note", "str", "plain text"),
    )
    validate_table(
        {"password": "pw-in-file-77aa", "token_env": "UNIT_API_TOKEN"}, options, source="a.toml", where="t"
    )
    assert {"pw-in-file-77aa", "env-held-4f0b7c2e91"} <= secrets.registered()
    assert "UNIT_API_TOKEN" not in secrets.registered()  # the variable's name is no secret, its value is
    assert "plain text" not in secrets.registered()
    secrets.register("abc", None)  # too short to mask anything safely
    assert "abc" not in secrets.registered()
