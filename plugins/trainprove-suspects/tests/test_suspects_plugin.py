"""Registration, a light entry point, secrets kept out of reports, and docs that keep up with the keys."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from trainprove_suspects import plugin

from trainprove_core.config import public_settings, validate_table
from trainprove_core.plugins import load_plugins

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = Path(__file__).resolve().parents[3] / "docs" / "suspects.md"
SPECS = {spec.name: spec for spec in plugin.trainprove_suspect_adapters()}


def test_the_adapters_are_registered_through_the_entry_point():
    plugins = load_plugins(strict=True)
    for name in ("onnx", "http", "transformers"):
        registered = plugins.get("suspect", name)
        assert registered.distribution == "trainprove-suspects"
        assert registered.spec.options == SPECS[name].options


def test_the_entry_point_imports_nothing_heavy():
    code = (
        "import sys, trainprove_suspects.plugin; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'httpx', 'PIL', 'orjson', 'fastapi', 'timm', "
        "'transformers', 'huggingface_hub') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_token_variable_is_secret_in_reports():
    settings = validate_table(
        {"url": "http://h", "model": "m", "token_env": "VENDOR_TOKEN"},
        SPECS["http"].options,
        source="audit.toml",
        where="suspect",
    )
    assert public_settings(settings, SPECS["http"].options)["token_env"] == "<secret>"


@pytest.mark.parametrize("name", ["onnx", "http", "transformers"])
def test_every_key_is_documented(name):
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(f"## The `{name}` adapter", 1)[1].split("\n## ", 1)[0]
    shared = text.split("## Keys shared by `onnx` and `http`", 1)[1].split("\n## ", 1)[0]
    missing = [o.name for o in SPECS[name].options if f"`{o.name}`" not in section + shared]
    assert not missing, f"docs/suspects.md does not document {missing} of the {name} adapter"
    assert all(o.help for o in SPECS[name].options)


def test_every_example_in_the_docs_is_a_valid_suspect_table():
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    suspects = [s for block in blocks for s in tomllib.loads(block).get("suspect", [])]
    assert len(suspects) >= 5
    for table in suspects:
        use = table.pop("use")
        table.pop("name")
        if use in SPECS:
            validate_table(table, SPECS[use].options, source="docs/suspects.md", where=use)
