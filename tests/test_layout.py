"""The layout rules a newcomer relies on: no plugin imports another plugin (what they share is the core's),
and the core imports no plugin."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())


def _packages(dist: Path) -> set[str]:
    return {p.name for p in dist.iterdir() if (p / "__init__.py").exists()}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_plugin_imports_another_plugin():
    owners = {pkg: dist.name for dist in PLUGINS for pkg in _packages(dist)}
    offences = []
    for dist in PLUGINS:
        for path in dist.rglob("*.py"):
            for name in _imports(path) & set(owners):
                if owners[name] != dist.name:
                    offences.append(f"{path.relative_to(ROOT)} imports {name} ({owners[name]})")
    assert not offences, "plugins share only the core's public surface:\n" + "\n".join(offences)


def test_the_core_imports_no_plugin():
    plugin_packages = {pkg for dist in PLUGINS for pkg in _packages(dist)}
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "trainprove_core").rglob("*.py")
        for name in _imports(path) & plugin_packages
    ]
    assert not offences, "\n".join(offences)
