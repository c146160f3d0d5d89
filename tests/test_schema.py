"""`trainprove schema`: every audit file in the repo validates against it, bad ones are refused by it and
by the loader alike, every option has help, and taplo (the engine of Even Better TOML) reads it."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from core_test_helpers import base_audit, run_cli

from trainprove_core.config import TABLES, TOP_LEVEL, config_from_dict
from trainprove_core.errors import ConfigError
from trainprove_core.plugins import load_plugins
from trainprove_core.schema import audit_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parent.parent
REQUIRED_TABLES = {t.name for t in TABLES if t.required}


def toml_blocks() -> list[tuple[str, Any]]:
    """Every TOML code block of the README and the docs that is (part of) an audit file, parsed: a block
    whose top-level keys are all audit-file keys. Blocks of other files (pyproject.toml) are left out."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)):
            document = tomllib.loads(block)
            if document and set(document) <= set(TOP_LEVEL):
                out.append((f"{path.relative_to(ROOT)} block {i + 1}", document))
    return out


def without_required(schema: Any, inside_if: bool = False) -> Any:
    """The schema of a fragment of an audit file (a docs block showing one table, or only a plugin's own
    keys): every `required` dropped, except in the `if` that picks a table's plugin by its name."""
    if isinstance(schema, list):
        return [without_required(s, inside_if) for s in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        k: without_required(v, inside_if or k == "if")
        for k, v in schema.items()
        if k != "required" or inside_if
    }


def messages(errors) -> list[str]:
    out = []
    for error in errors:
        out += [error.message, *messages(error.context or ())]
    return out


def validate(schema: dict, document: Any) -> list[str]:
    return messages(jsonschema.Draft202012Validator(schema).iter_errors(document))


@pytest.fixture(scope="module")
def installed_schema() -> dict:
    return audit_schema(load_plugins(strict=True))


@pytest.fixture
def kit_schema(plugins) -> dict:
    """The schema with the test kit's plugins (`shapes`, `pixel-logistic`) too, for the tests' fixtures."""
    return audit_schema(plugins)


def demo_audits() -> list[dict]:
    """The audit files `trainprove demo` writes, for every defender, with and without house styles."""
    from trainprove_demo.pool import DEFENDERS, SOURCES, Suspect, audit_document

    pool = [Suspect(f"s-{s}", s, ROOT / "checkpoints" / s) for s in SOURCES]
    return [audit_document(d, pool, hard) for d in DEFENDERS for hard in (False, True)]


def test_the_schema_is_a_valid_draft_2020_12_schema(installed_schema):
    jsonschema.Draft202012Validator.check_schema(installed_schema)
    assert installed_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_audit_file_of_the_readme_and_docs_validates(installed_schema):
    blocks = toml_blocks()
    full = [(w, d) for w, d in blocks if REQUIRED_TABLES <= set(d)]
    fragments = [(w, d) for w, d in blocks if not REQUIRED_TABLES <= set(d)]
    # the README's audit file and the docs' tables: a collector that finds nothing must not pass
    assert len(full) >= 1 and len(fragments) >= 30, (len(full), len(fragments))
    fragment_schema = without_required(installed_schema)
    failures = [
        f"{where}: {message}"
        for where, document in blocks
        for message in validate(installed_schema if (where, document) in full else fragment_schema, document)
    ]
    assert not failures, "\n".join(failures)


def test_the_tests_and_demos_audits_validate_and_load(kit_schema, plugins):
    fixture = base_audit(suspect=[{"name": "s", "use": "pixel-logistic", "model_dir": "m"}])
    documents = [fixture, *demo_audits()]
    for document in documents:
        assert validate(kit_schema, document) == []
        config_from_dict(document, plugins)  # the loader agrees


def test_every_option_has_help(plugins):
    """The schema's descriptions are the options' help: an option without it is a key editors cannot
    explain (this covers every installed plugin, the test kit, and the core's own keys)."""
    missing = [
        f"{r.kind} {r.name!r} ({r.distribution}): {o.name}"
        for r in plugins.all_registered()
        for o in r.spec.options
        if not o.help.strip()
    ]
    missing += [f"core [{t.name}]: {o.name}" for t in TABLES for o in t.core if not o.help.strip()]
    assert not missing, "options without help text:\n" + "\n".join(missing)


def _mutate(document: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(document)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


DELETE = object()
INVALID = [
    (("sed",), 1, "'sed' was unexpected"),
    (("task",), DELETE, "'task' is a required property"),
    (("shadow", "epochz"), 12, "'epochz' was unexpected"),
    (("shadow", "epochs"), 0, "less than the minimum of 1"),
    (("shadow", "trainer"), "timn", "is not one of"),
    (("generator", "use"), "digits-ddpn", "is not one of"),
    (("generator", "house_style"), "yes", "is not of type 'boolean'"),
    (("validation", "per_class"), "many", "is not of type 'integer'"),
    (("suspect", 0, "truth"), "guilty", "is not one of"),
    (("suspect", 0, "name"), DELETE, "'name' is a required property"),
    (("suspect", 0, "use"), "http", "'url' is a required property"),
    (("test", 1, "references"), "digits-cfg", "is not of type 'array'"),
    (("test", 1, "recipes"), [1], "is not of type 'object'"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), INVALID, ids=[".".join(map(str, p)) for p, _, _ in INVALID]
)
def test_invalid_audits_are_refused_by_the_schema_and_the_loader(
    installed_schema, plugins, path, value, message
):
    document = _mutate(demo_audits()[0], path, value)
    found = validate(installed_schema, document)
    assert any(message in m for m in found), found
    with pytest.raises(ConfigError):
        config_from_dict(document, plugins)


def test_the_schema_command_prints_it(installed_schema):
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == installed_schema


def test_taplo_validates_audit_files_with_it(tmp_path, installed_schema):
    """taplo (the engine of the Even Better TOML editor extension) reads the schema through a `#:schema`
    line and through a .taplo.toml rule, and reports a mistyped key at its line."""
    taplo = shutil.which("taplo", path=str(Path(sys.executable).parent)) or shutil.which("taplo")
    if taplo is None:
        pytest.skip("taplo is not installed (pip install taplo; it is in the dev extra)")
    (tmp_path / "audit.schema.json").write_text(json.dumps(installed_schema))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    audit = re.search(r"```toml\n(# audit.toml.*?)```", readme, re.S).group(1)
    (tmp_path / "good.toml").write_text("#:schema ./audit.schema.json\n" + audit)
    (tmp_path / "bad.toml").write_text(
        "#:schema ./audit.schema.json\n" + audit.replace("epochs = 100", "epochz = 100")
    )
    good = subprocess.run(
        [taplo, "check", "good.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(
        [taplo, "check", "bad.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "'epochz' was unexpected" in bad.stderr + bad.stdout

    rule = tmp_path / "project"
    rule.mkdir()
    (rule / ".taplo.toml").write_text(
        '[[rule]]\ninclude = ["**/audit*.toml"]\n[rule.schema]\npath = "../audit.schema.json"\n'
    )
    (rule / "audit-vendor.toml").write_text(audit.replace('dtype = "fp16"', 'dtype = "fp17"'))
    ruled = subprocess.run(
        [taplo, "check", "audit-vendor.toml"], cwd=rule, capture_output=True, text=True, timeout=60
    )
    assert ruled.returncode != 0 and '"fp17" is not one of' in ruled.stderr + ruled.stdout
