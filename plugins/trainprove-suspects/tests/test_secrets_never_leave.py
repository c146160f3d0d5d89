"""The API token never leaves the process, wherever a hostile or buggy server sends it back.

One `trainprove audit`, run as a user runs it (its own process, real stderr), asks one suspect per way a
server can return the request's `Authorization` header: in an error body (permanent and retried), in a
200 body that is no answer (v2 and a JSON API), in the model metadata, in a response header next to good
answers, and in a redirect's `Location`. Then report.json, report.html, every file of the store, stdout
and stderr are searched for the token in every form it travels in, and for any start of it of 8
characters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest
from trainprove_suspects.serve import Faults, create_app, serve

from trainprove_core import secrets

TOKEN = "tp-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

RUN = """
import sys
from trainprove_core.cli import cli
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins

plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
cli(args=sys.argv[1:], obj={"plugins": plugins}, prog_name="trainprove")
"""

# name: (fault of every inference request, fault of the metadata, extra keys of the suspect's table)
LEAKS = {
    "error-body": ("echo-auth-400", None, {}),
    "retried-error-body": ("echo-auth-503", None, {"retries": 1}),
    "v2-200-no-outputs": ("echo-auth", None, {}),
    "json-200-no-answers": (
        "echo-auth",
        None,
        {"protocol": "json", "response_path": "predictions.*.label", "output_kind": "labels"},
    ),
    "metadata": (None, "echo-auth", {}),
    "response-header": ("echo-auth-header", None, {}),
    "redirect": ("redirect-auth", None, {}),
}


def toml_value(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


@pytest.mark.slow
def test_the_token_is_in_no_output_whatever_the_server_sends_back(model, tmp_path):
    classes = ["disc", "ring", "hbar"]
    with ExitStack() as servers:
        tables = []
        for name, (fault, metadata, keys) in LEAKS.items():
            faults = Faults()
            faults.always, faults.metadata = fault, metadata
            url = servers.enter_context(
                serve(create_app(model, classes, image_size=16, faults=faults, token=TOKEN))
            )
            if keys.get("protocol") == "json":
                url += "/classify"
            else:
                keys = {"model": "suspect", **keys}
            # One request at a time: how far a suspect gets before its error stops it is then the same on
            # a busy machine (with requests in flight at once, it depends on which one fails first).
            table = {
                "name": name,
                "use": "http",
                "url": url,
                "token_env": "SUSPECT_TOKEN",
                "backoff": 0.01,
                "concurrency": 1,
            }
            tables.append({**table, **keys})
        suspects = "\n".join(
            "[[suspect]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in t.items()) for t in tables
        )
        audit = tmp_path / "audit.toml"
        audit.write_text(
            textwrap.dedent(
                """
                [task]
                classes = ["disc", "ring", "hbar"]
                image_size = 16
                [generator]
                use = "shapes"
                [shadow]
                prompt = "a {label}"
                per_class = 20
                trainer = "pixel-logistic"
                [validation]
                prompt = "a photo of a {label}"
                per_class = 10
                batch_size = 10
                """
            )
            + suspects
        )
        env = {**os.environ, "SUSPECT_TOKEN": TOKEN, "TRAINPROVE_PROGRESS_INTERVAL": "0.5"}
        out, store = tmp_path / "out", tmp_path / "store"
        command = [sys.executable, "-c", RUN, "audit", str(audit), "--out", str(out), "--store", str(store)]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)

    assert result.returncode == 1, result.stderr  # the suspects that could not be asked are errors
    report = json.loads((out / "report.json").read_text())
    errors = {s["name"]: s.get("error") for s in report["suspects"]}
    # Every server did send the token back: the messages quote it, masked.
    assert all(secrets.MASK in errors[name] for name in LEAKS if name != "response-header"), errors
    assert (
        "the server redirects to 'http://198.51.100.7/v2/infer?token=<secret>&auth=<secret>'"
        in (errors["redirect"])
    )
    assert errors["response-header"] is None  # its answers were good: judged
    assert {v["suspect"] for v in report["verdicts"]} == {"response-header"}
    # What each cost, whatever the outcome: images sent (retries included) and answered (a 2xx arrived).
    usage = {s["name"]: (s["queries_sent"], s["queries_paid"]) for s in report["suspects"]}
    # 30 images in requests of 16, one at a time: a suspect whose first request fails for good sends no
    # second one (16 sent; a 200 that is no answer is paid all the same); a 503 retried once sends its
    # first request twice; good answers: both requests, all paid.
    assert usage["response-header"] == (30, 30), usage
    for name in ("v2-200-no-outputs", "json-200-no-answers"):
        assert usage[name] == (16, 16), (name, usage)
    for name in ("error-body", "redirect"):
        assert usage[name] == (16, 0), (name, usage)
    assert usage["retried-error-body"] == (32, 0), usage
    assert usage["metadata"] == (0, 0)  # stopped before any image was sent
    assert "HTTP 400 Bad Request" in result.stderr and "Traceback" not in result.stderr

    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    outputs |= {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    needles = secrets.forms(TOKEN) | {TOKEN[: secrets.PREFIX], f"Bearer {TOKEN}"}
    leaks = [
        (where, needle)
        for where, text in outputs.items()
        if where != "audit.toml"
        for needle in needles
        if (needle.encode() if isinstance(text, bytes) else needle) in text
    ]
    assert not leaks, leaks
    assert len(outputs) > 10  # report.json, report.html, the store's files, stdout, stderr
    assert any(Path(p).name == "report.html" for p in outputs)
