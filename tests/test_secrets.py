"""trainprove_core.secrets: what is redacted, in which forms, and what is left alone."""

from __future__ import annotations

import base64
from urllib.parse import quote

import numpy as np

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


def test_the_report_is_clean_of_any_plugins_secret(tmp_path):
    """Not only the http adapter: a plugin that declares a credential and lets it slip into a verdict's
    explanation or an observer's error still leaves report.json, report.html and the audit's errors clean."""
    from trainprove_core.audit import run_audit
    from trainprove_core.config import config_from_dict
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.hookspecs import hookimpl
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    secret = "plugin-credential-5e6f7a8b9c"

    class Careless:
        @hookimpl
        def trainprove_after_verdict(self, verdict):
            verdict.explanation += f" (asked with {secret})"

        @hookimpl
        def trainprove_before_audit(self, config, out_dir):
            raise RuntimeError(f"could not log in with {secret[:12]}")

    plugins = load_plugins()
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    plugins.register(Careless(), "careless", "tests")
    secrets.register(secret)  # as a plugin that reads a credential does
    document = {
        "task": {"classes": ["disc", "ring", "hbar"], "image_size": 16},
        "generator": {"use": "shapes"},
        "shadow": {"prompt": "a {label}", "per_class": 10, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 10, "batch_size": 10},
        "suspect": [{"name": "s", "use": "pixel-logistic", "model_dir": str(tmp_path / "suspect")}],
    }
    (tmp_path / "suspect").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "suspect" / "weights.npz", coef=rng.normal(size=(3, 256)), intercept=np.zeros(3))
    config = config_from_dict(document, plugins, source="audit.toml")
    result = run_audit(config, plugins, tmp_path / "out", Store(tmp_path / "store"), show_progress=False)
    written = (tmp_path / "out" / "report.json").read_text() + (tmp_path / "out" / "report.html").read_text()
    assert "asked with <secret>" in written and "log in with <secret>" in written
    assert secret[: secrets.PREFIX] not in written + repr(result.observer_errors) + repr(result.report)
