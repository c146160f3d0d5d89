"""Every hook is documented with its exact signature (datasette's rule) and implemented by tested code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from trainprove_core import hookspecs

ROOT = Path(__file__).resolve().parent.parent


def _hooks() -> dict[str, str]:
    out = {}
    for name, fn in vars(hookspecs).items():
        if name.startswith("trainprove_") and callable(fn):
            out[name] = f"{name}{inspect.signature(fn)}".replace("'", "")
    return out


def test_every_hook_has_a_docs_section_with_its_exact_signature():
    doc = (ROOT / "docs" / "hooks.md").read_text()
    documented = {
        name: sig for sig, name in re.findall(r"^### `((trainprove_\w+)\(.*?\) -> [^`]*)`$", doc, re.M)
    }
    assert set(documented) == set(_hooks()), "docs/hooks.md and hookspecs.py list different hooks"
    for name, signature in _hooks().items():
        assert documented[name] == signature, (
            f"docs/hooks.md shows {documented[name]!r}, code has {signature!r}"
        )


def test_every_hook_is_implemented_by_code_the_suite_runs():
    files = [*(ROOT / "tests").glob("*.py"), *(ROOT / "plugins").glob("*/*/*.py")]
    sources = "".join(p.read_text() for p in files if p.name != "test_docs.py")
    missing = [name for name in _hooks() if f"def {name}(" not in sources]
    assert not missing, f"hooks that no plugin or test implements: {missing}"


def test_every_hook_has_a_test_that_exercises_it():
    """Datasette's rule: a hook that no test module names (implementing it, calling it, or selecting by it)
    is a hook nothing checks still works."""
    tests = [
        *(ROOT / "tests").glob("test_*.py"),
        *(ROOT / "plugins").glob("*/tests/test_*.py"),
        *(ROOT / "docs" / "examples").glob("*/tests/test_*.py"),
    ]
    sources = {p: p.read_text() for p in tests if p.name != "test_docs.py"}
    untested = [name for name in _hooks() if not any(re.search(rf"\b{name}\b", s) for s in sources.values())]
    assert not untested, f"hooks in hookspecs.py that no test module exercises: {untested}"


def test_the_readme_audit_file_is_valid(tmp_path):
    from trainprove_core.config import load_config
    from trainprove_core.plugins import load_plugins

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```toml\n(# audit.toml.*?)```", readme, re.S).group(1)
    (tmp_path / "audit.toml").write_text(block)
    config = load_config(tmp_path / "audit.toml", load_plugins(strict=True))
    assert config.generator.use == "stable-diffusion-v1-4" and config.validation.batch_size == 128
    assert [t.name for t in config.tests] == ["trainprove", "trainprove-paper"]


def test_the_readme_plugin_keeps_the_decision_test_contract():
    """The README's example plugin, run as written, passes the checks the kit gives plugin authors."""
    import types

    from trainprove_core.testing import DecisionTestContract, build

    readme = (ROOT / "README.md").read_text()
    source = re.search(r"```python\n(# my_rules/plugin.py.*?)```", readme, re.S).group(1)
    module = types.ModuleType("my_rules_plugin")
    exec(compile(source, "README.md", "exec"), module.__dict__)
    rule = build(module, "test", "margin")
    contract = DecisionTestContract()
    contract.test_declares_what_it_needs(rule)
    contract.test_verdicts_are_well_formed_and_repeatable(rule)
    contract.test_clear_cases_come_out_right(rule)
    contract.test_degenerate_evidence_is_inconclusive(rule)
