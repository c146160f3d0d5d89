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


def _core_imports() -> dict[str, set[str]]:
    """Each core module and the core modules it imports: at run time, inside a function, or only for type
    checking (a circle of any of them is one a reader has to hold in their head)."""
    core = ROOT / "trainprove_core"
    paths = {}
    for path in core.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                # a module's own package (`trainprove_core`, its folder) is where it lives, not a dependency
                if target and target != name and not name.startswith(target + "."):
                    found.add(target)
        graph[name] = found
    return graph


def test_the_core_has_no_import_circle():
    graph = _core_imports()
    circles = []
    for start in sorted(graph):
        path, seen = [start], set()

        def walk(module: str) -> None:
            for nxt in sorted(graph[module]):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen and nxt > start:  # each circle once, from its smallest module
                    seen.add(nxt)
                    path.append(nxt)
                    walk(nxt)
                    path.pop()

        walk(start)
    assert not circles, "import circles in trainprove_core (runtime or type-only):\n" + "\n".join(circles)
