"""The Python API: an audit from a notebook or a pipeline, as `trainprove audit` and `trainprove check`
run it (docs/python-api.md).

    import trainprove
    report = trainprove.audit("audit.toml", out="runs/vendor")
    for v in report.verdicts:
        print(v["suspect"], v["test"], v["decision"], v["p_value"])

The same functions are `trainprove_core.api.audit`, `.check` and `.load_report` (the package `trainprove`
re-exports them: `trainprove_core.audit` is the engine's old module name, kept for one release). Nothing
heavy is imported until a function is called.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import AuditConfig
    from .engine import AuditReport
    from .plugins import PluginSet
    from .store import Store

AuditSource = str | Path | Mapping[str, Any]
"""An audit file's path, or its document as a dict (what the TOML file parses to)."""


def _config(audit: AuditSource, plugins: PluginSet, base_dir: str | Path | None) -> AuditConfig:
    from .config import config_from_dict, load_config

    if isinstance(audit, Mapping):
        root = Path(base_dir) if base_dir is not None else Path.cwd()
        return config_from_dict(audit, plugins, source="<audit dict>", base_dir=root)
    return load_config(Path(audit), plugins)


def _store(store: str | Path | Store | None) -> Store:
    from .store import Store, default_store_root

    if store is None:
        return Store(default_store_root())
    return store if isinstance(store, Store) else Store(Path(store))


def audit(
    audit: AuditSource,
    *,
    out: str | Path | None = None,
    store: str | Path | Store | None = None,
    html: bool = True,
    progress: bool = True,
    plugins: PluginSet | None = None,
    base_dir: str | Path | None = None,
) -> AuditReport:
    """Run an audit and write its report, as `trainprove audit` does; return the report.

    audit: an audit file's path, or its document as a dict (paths in it are relative to `base_dir`,
    default the working directory).
    out: the report's folder (report.json, report.html); default `runs/<audit file name>`, required for
    a dict.
    store: the cache's folder, or a `Store` (default `~/.cache/trainprove` or `$TRAINPROVE_STORE`);
    everything expensive is cached there, so a second call with one more suspect only asks that one.
    html: write report.html too. progress: progress lines on stderr.
    plugins: the plugins to use (default: every installed one, as the command line finds them).
    Returns: the typed `AuditReport` (`verdicts`, `suspects`, `errors` ...; also a mapping of
    report.json's keys). A suspect that could not be asked (a dead endpoint, a budget) is in
    `report.errors` and the others are judged; bad input raises `ConfigError` or `InputError` (naming
    the file, table and key) before any work.
    """
    from .checks import output_folder
    from .engine import run_audit
    from .plugins import load_plugins

    plugins = plugins if plugins is not None else load_plugins()
    config = _config(audit, plugins, base_dir)
    if out is None:
        if isinstance(audit, Mapping):
            raise TypeError("audit(): out= is required when the audit is given as a dict")
        out = Path("runs") / Path(audit).stem
    output_folder(Path(out), "out=")
    result = run_audit(config, plugins, Path(out), _store(store), progress, html=html)
    return result.report


def check(
    audit: AuditSource,
    *,
    store: str | Path | Store | None = None,
    plugins: PluginSet | None = None,
    base_dir: str | Path | None = None,
) -> AuditConfig:
    """Check an audit as `trainprove check` does (every key, each suspect's files and label space) and do
    nothing else; the validated `AuditConfig`, or `ConfigError`/`InputError` naming the problem."""
    from .engine import AuditRun
    from .plugins import load_plugins

    plugins = plugins if plugins is not None else load_plugins()
    config = _config(audit, plugins, base_dir)
    with AuditRun(config, plugins, _store(store), show_progress=False) as run:
        run.open_suspects(cache=False)
        run.close_adapters()
    return config


def load_report(path: str | Path) -> AuditReport:
    """The `AuditReport` of a finished audit: its folder, or its report.json."""
    from .engine import AuditReport
    from .errors import InputError

    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{file}: cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{file}: not valid JSON ({exc})") from None
    try:
        return AuditReport.from_json(document)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{file}: not a trainprove report.json (missing {exc})") from None
