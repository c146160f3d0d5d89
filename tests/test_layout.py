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


def _circles_through(graph: dict[str, set[str]], start: str) -> list[str]:
    """The import circles through `start` among modules not smaller than it (each circle found once, from
    its smallest module)."""
    found, path, seen = [], [start], set()

    def walk(module: str) -> None:
        for nxt in sorted(graph[module]):
            if nxt == start:
                found.append(" -> ".join([*path, start]))
            elif nxt not in seen and nxt > start:
                seen.add(nxt)
                path.append(nxt)
                walk(nxt)
                path.pop()

    walk(start)
    return found


def test_the_core_has_no_import_circle():
    graph = _core_imports()
    circles = [c for start in sorted(graph) for c in _circles_through(graph, start)]
    assert not circles, "import circles in trainprove_core (runtime or type-only):\n" + "\n".join(circles)


def test_the_engine_reads_optional_members_through_the_declared_protocols():
    """`close`, `load`, `attach`, `usage`, `remarks`, `parallel` and `sequential` are declared in the contract
    (`Closable`, `LoadsLazily`, `Attaches`, `Metered`, `Remarks`, `Executor`, `Sequential`), not probed."""
    optional = {"close", "load", "attach", "usage", "remarks", "parallel", "sequential"}
    offences = []
    for path in [
        *(ROOT / "trainprove_core" / "engine").rglob("*.py"),
        ROOT / "trainprove_core" / "executors.py",
    ]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in optional
            ):
                offences.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})"
                )
    assert not offences, "\n".join(offences)


def test_plugins_library_code_imports_only_the_cores_public_names():
    """A plugin's library code (not its tests) imports what `trainprove_core` exports (`__all__`), the click
    options commands share (`cli_options`) and, for a command built on a fleet, `fleet`: nothing of the
    engine's internals, so the engine can change without breaking a plugin."""
    import trainprove_core

    public = set(trainprove_core.__all__)
    products = {"trainprove_core.cli_options", "trainprove_core.fleet"}
    libraries = [
        *PLUGINS,
        *(p for p in (ROOT / "docs" / "examples").iterdir() if (p / "pyproject.toml").exists()),
    ]
    offences = []
    for dist in libraries:
        for package in _packages(dist):
            for path in (dist / package).rglob("*.py"):
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                    where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                    if isinstance(node, ast.Import):
                        offences += [
                            f"{where} import {a.name}"
                            for a in node.names
                            if a.name.startswith("trainprove_core.")
                        ]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        if node.module == "trainprove_core":
                            offences += [f"{where} {a.name}" for a in node.names if a.name not in public]
                        elif node.module.startswith("trainprove_core.") and node.module not in products:
                            offences.append(f"{where} from {node.module}")
    assert not offences, "plugins import the core's public names only:\n" + "\n".join(offences)
