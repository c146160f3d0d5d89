"""trainprove and every plugin build as a wheel a user can `pip install` outside this repository: each
holds all of its package's modules and data, registers its entry point, asks for torch and Ray as ranges
(never pins them), and the top-level extras name every plugin (docs/install.md)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
RANGED = ("torch", "torchvision", "ray", "transformers", "diffusers", "mlflow")


def project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("dist")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(ROOT), *map(str, PLUGINS)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    found = {}
    for path in out.glob("*.whl"):
        archive = zipfile.ZipFile(path)
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        found[Parser().parsestr(archive.read(meta).decode())["Name"]] = archive
    return found


def sources(folder: Path, package: str) -> set[str]:
    """The files a package's wheel must hold: its modules and the data its pyproject declares."""
    base = folder / package
    files = {p.relative_to(folder).as_posix() for p in base.rglob("*.py") if "__pycache__" not in p.parts}
    setuptools = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in setuptools.get("package-data", {}).get(package, []):
        files |= {p.relative_to(folder).as_posix() for p in base.glob(pattern)}
    return files


@pytest.mark.slow
@pytest.mark.parametrize("folder", [ROOT, *PLUGINS], ids=lambda p: p.name)
def test_each_package_builds_a_complete_wheel(wheels, folder):
    name = project(folder)["name"]
    archive = wheels[name]
    names = set(archive.namelist())
    packages = ["trainprove", "trainprove_core"] if folder == ROOT else [name.replace("-", "_")]
    for package in packages:
        missing = sources(folder, package) - names
        assert not missing, f"the wheel of {name} lacks {sorted(missing)[:5]}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "[trainprove]" in archive.read(entry_points).decode()
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = Parser().parsestr(archive.read(meta).decode()).get_all("Requires-Dist") or []
    specs = [r.split(";")[0] for r in requires]  # without the markers (`extra == "serve"`)
    pinned = [r for r in specs if r.split("[")[0].strip().startswith(RANGED) and "==" in r]
    assert not pinned, f"{name} pins {pinned}: ask for a range, so that an environment's own version stays"


def test_the_extras_name_every_plugin_and_all_holds_them_all():
    extras = project(ROOT)["optional-dependencies"]
    plugins = {project(p)["name"] for p in PLUGINS}
    named = {r.split("[")[0] for group, reqs in extras.items() if group != "all" for r in reqs}
    assert plugins <= named, f"plugins without an extra: {sorted(plugins - named)}"
    everything = extras["all"][0].split("[")[1].rstrip("]").split(",")
    assert set(everything) == set(extras) - {"all", "audit", "dev", "bench"}


def test_matplotlib_is_only_the_bench_extra():
    core = project(ROOT)
    assert not any(r.startswith("matplotlib") for r in core["dependencies"])
    assert core["optional-dependencies"]["bench"] == ["matplotlib>=3.7"]
    users = [
        p.relative_to(ROOT).as_posix()
        for folder in ("trainprove", "trainprove_core", "plugins")
        for p in (ROOT / folder).rglob("*.py")
        if "/tests/" not in p.as_posix() and "import matplotlib" in p.read_text(encoding="utf-8")
    ]
    assert users == [], f"matplotlib imported outside bench/: {users}"
