"""Finding, loading and listing plugins.

Plugins are entry points of the group "trainprove"; each points at a module (or object) holding
`@hookimpl` functions. The core's own `local` executor is registered the same way, from this distribution.
A plugin that fails to import is reported and skipped (`TRAINPROVE_STRICT_PLUGINS=1` makes it an error);
two plugins registering one name under one kind is an error that names both distributions.
`TRAINPROVE_TRACE_PLUGINS=1` prints every hook call to stderr.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .records import SPEC_KINDS

ENTRY_POINT_GROUP = "trainprove"

REGISTRY_HOOKS = {
    "generator": "trainprove_generators",
    "suspect": "trainprove_suspect_adapters",
    "shadow-trainer": "trainprove_shadow_trainers",
    "test": "trainprove_decision_tests",
    "executor": "trainprove_executors",
}


@dataclass(frozen=True)
class Registered:
    """One thing a plugin registered: its spec, and who registered it."""

    kind: str
    spec: Any
    plugin: str
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class PluginFailure:
    plugin: str
    distribution: str
    error: str


@dataclass
class PluginSet:
    """The plugin manager plus what every plugin registered, indexed by kind and name."""

    pm: pluggy.PluginManager
    registry: dict[str, dict[str, Registered]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def get(self, kind: str, name: str) -> Registered:
        """The registration of `name` under `kind`, or a `PluginError` listing what is available."""
        found = self.registry.get(kind, {})
        if name in found:
            return found[name]
        known = ", ".join(sorted(found)) or "none"
        hint = ""
        failed = [f.plugin for f in self.failures]
        if failed:
            hint = f" Plugins that failed to load: {', '.join(failed)} (run `trainprove plugins`)."
        raise PluginError(f"unknown {kind} {name!r}; installed: {known}.{hint}")

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry.get(kind, {}))

    def all_registered(self) -> list[Registered]:
        return [r for kind in self.registry.values() for r in kind.values()]

    def describe(self) -> list[dict[str, Any]]:
        """One JSON-able record per registered thing (what `trainprove plugins --json` prints)."""
        rows = [
            {
                "name": r.name,
                "kind": r.kind,
                "description": r.spec.description,
                "plugin": r.plugin,
                "distribution": r.distribution,
                "version": r.version,
                "options": [o.name for o in r.spec.options],
            }
            for r in self.all_registered()
        ]
        return sorted(rows, key=lambda row: (row["kind"], row["name"]))

    def register(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object (module or instance) and index what it offers."""
        self.pm.register(plugin, name=name)
        self.sources[name] = (distribution or name, version)
        self._index(name)

    def _index(self, plugin_name: str) -> None:
        plugin = self.pm.get_plugin(plugin_name)
        distribution, version = self.sources[plugin_name]
        for kind, hook_name in REGISTRY_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                for spec in impl.function() or ():
                    self._add(kind, spec, plugin_name, distribution, version)

    def _add(self, kind: str, spec: Any, plugin: str, distribution: str, version: str) -> None:
        expected = SPEC_KINDS.get(type(spec))
        if expected != kind:
            raise PluginError(
                f"plugin {plugin!r} ({distribution}) returned {type(spec).__name__} from the {kind} hook"
            )
        table = self.registry.setdefault(kind, {})
        if spec.name in table:
            other = table[spec.name]
            raise PluginError(
                f"two plugins register the {kind} {spec.name!r}: {other.plugin!r} from distribution "
                f"{other.distribution} and {plugin!r} from distribution {distribution}; uninstall one"
            )
        table[spec.name] = Registered(kind, spec, plugin, distribution, version)


def new_plugin_set() -> PluginSet:
    """An empty plugin manager with trainprove's hook specs (no plugins loaded)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("TRAINPROVE_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(f"[trainprove] {msg}"))
        pm.enable_tracing()
    return PluginSet(pm)


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def strict_plugins() -> bool:
    return os.environ.get("TRAINPROVE_STRICT_PLUGINS", "") not in ("", "0")


def load_plugins(strict: bool | None = None) -> PluginSet:
    """A plugin set with every installed entry point of the group "trainprove".

    A plugin that fails to import or to register is recorded in `failures` and skipped, unless `strict`
    (default: the `TRAINPROVE_STRICT_PLUGINS` environment variable) asks for an error. A duplicate name is
    always an error: silently picking one would make audits depend on install order.
    """
    strict = strict_plugins() if strict is None else strict
    plugins = new_plugin_set()
    seen: set[str] = set()
    for ep in sorted(_entry_points(), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        try:
            obj = ep.load()
            plugins.register(obj, ep.name, dist, version)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure inside a plugin must not break trainprove
            if strict:
                raise PluginError(
                    f"plugin {ep.name!r} from {dist} {version} failed to load: {exc!r}"
                ) from exc
            if ep.name in plugins.sources:
                plugins.pm.unregister(name=ep.name)
                for table in plugins.registry.values():
                    for key in [k for k, r in table.items() if r.plugin == ep.name]:
                        del table[key]
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            plugins.failures.append(PluginFailure(ep.name, f"{dist} {version}", detail))
    return plugins
