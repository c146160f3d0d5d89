"""Small plugin distributions written to a folder (a dist-info with entry points, and a module), found by
importlib.metadata exactly as an installed third-party package is: on sys.path, or on PYTHONPATH for a
`trainprove` run in its own process."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from core_test_helpers import TRAINPROVE

DECISION_TEST = """
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec


class Coin:
    needs = "labels"


@hookimpl
def trainprove_decision_tests():
    return [DecisionTestSpec({name!r}, lambda settings: Coin(), "a third-party test")]
"""

GENERATOR_AND_TEST = """
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec, GeneratorSpec


@hookimpl
def trainprove_generators():
    return [GeneratorSpec({generator!r}, lambda settings: None, "a generator from {dist}")]


@hookimpl
def trainprove_decision_tests():
    return [DecisionTestSpec({test!r}, lambda settings: None, "a test only {dist} has")]
"""

COMMAND_ONLY = '''
"""Adds `trainprove hello` and nothing else."""
import click

from trainprove_core.hookspecs import hookimpl


@hookimpl
def trainprove_commands(cli):
    @cli.command()
    def hello():
        """Say hello."""
        click.echo("hello")
'''

RAISING_COMMANDS = '''
"""Adds `trainprove half` and then fails."""
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec


@hookimpl
def trainprove_commands(cli):
    @cli.command()
    def half():
        """Never reachable: the hook fails after adding it."""

    raise RuntimeError("my command hook is broken")


@hookimpl
def trainprove_decision_tests():
    return [DecisionTestSpec("half-rule", lambda settings: None, "from a plugin whose commands fail")]
'''

OBSERVER_ONLY = """
from trainprove_core.hookspecs import hookimpl


@hookimpl
def trainprove_after_audit(report, out_dir):
    print("audited")
"""

RICH_OPTIONS = """
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import GeneratorSpec, Option, SuspectAdapterSpec


@hookimpl
def trainprove_generators():
    classes = ("zero", "one")
    return [GeneratorSpec("two-digits", lambda s: None, "a class-conditioned generator", classes=classes)]


@hookimpl
def trainprove_suspect_adapters():
    description = "a suspect adapter with every kind of key"
    return [SuspectAdapterSpec("rich", lambda settings, task: None, description, (
        Option("endpoint", "str", help="where the model answers"),
        Option("mode", "str", "fast", help="how to ask", choices=("fast", "careful")),
        Option("token_env", "str", None, help="variable holding the token", secret=True),
        Option("mean", "list[float]", (0.5, 0.25), help="per-channel mean"),
        Option("extra", "table", {"a": 1}, help="extra request fields"),
        Option("retries", "int", 3, help="a deliberately long help line that must wrap: " + "words " * 30),
        Option("share", "float", 0.5, help="a bounded number", min=0.0, max=1.0),
    ))]
"""

RAISING = """
from trainprove_core.hookspecs import hookimpl


@hookimpl
def trainprove_generators():
    raise RuntimeError("cannot list my generators")
"""

JUNK = """
from trainprove_core.hookspecs import hookimpl


@hookimpl
def trainprove_generators():
    return ["not a spec"]
"""


def write_distribution(
    site: Path, dist: str, module: str, source: str, entry_points: dict[str, str] | None = None
) -> None:
    """A distribution `dist` 1.2.3 with `module.py` and entry points (default: `dist = module`)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\nSummary: the {dist} test distribution\n"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in (entry_points or {dist: module}).items())
    (info / "entry_points.txt").write_text(f"[trainprove]\n{lines}")


def run_trainprove(site: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`trainprove ARGS...` in its own process, with `site` on PYTHONPATH and only the TRAINPROVE_*
    variables given here set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRAINPROVE_")}
    clean["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    clean.update(env)
    return subprocess.run(
        [TRAINPROVE, *args], capture_output=True, text=True, timeout=timeout, env=clean, cwd=site
    )


MISSPELT = """
from trainprove_core.hookspecs import hookimpl


@hookimpl
def trainprove_generator():
    return []
"""
