"""Finding, loading and listing plugins.

Plugins are entry points of the group "trainprove"; each points at a module (or object) holding
`@hookimpl` functions. The core's own `local` executor is registered the same way, from this distribution.

Loading never hides or breaks a plugin:

- a plugin that fails to import, or whose registry hook raises or returns something else than spec
  records, is recorded in `failures` and skipped (`TRAINPROVE_STRICT_PLUGINS=1` makes it an error); so is
  one whose `trainprove_commands` raises when the CLI starts (`PluginSet.add_commands`);
- two entry points with one name (from two distributions) are both loaded, each under
  `<distribution>:<name>`, and the collision is a warning;
- two plugins registering one name under one kind are both listed; the name is an error naming both
  distributions only when an audit uses it (`PluginSet.get`), never at start-up;
- `TRAINPROVE_DISABLE_PLUGINS=a,b` skips plugins and `TRAINPROVE_LOAD_PLUGINS=a,b` loads only those (and
  the core), by distribution or entry-point name.

Registry hooks are called through pluggy, one plugin at a time (a subset hook caller), so it is known who
registered what and `TRAINPROVE_TRACE_PLUGINS=1` prints every hook call, naming the plugins it reaches.
"""

from __future__ import annotations

import os
import re
import reprlib
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from . import hookspecs
from .errors import PluginError
from .records import (
    KIND,
    KINDS,
    DecisionTestSpec,
    ExecutorSpec,
    GeneratorSpec,
    Kind,
    ShadowTrainerSpec,
    SuspectAdapterSpec,
)

ENTRY_POINT_GROUP = "trainprove"
CORE_DISTRIBUTION = "trainprove"

HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, value in vars(hookspecs).items() if name.startswith("trainprove_") and callable(value)
)
"""Every hook, in the order hookspecs.py declares them."""
REGISTRY_HOOKS: frozenset[str] = frozenset(kind.hook for kind in KINDS)

DISABLE_ENV = "TRAINPROVE_DISABLE_PLUGINS"
LOAD_ENV = "TRAINPROVE_LOAD_PLUGINS"
STRICT_ENV = "TRAINPROVE_STRICT_PLUGINS"
TRACE_ENV = "TRAINPROVE_TRACE_PLUGINS"


def normalize(name: str) -> str:
    """A distribution or plugin name compared the way pip compares distribution names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def hook_name(name: str) -> str:
    """`name` as a full hook name (`commands` -> `trainprove_commands`), or a `PluginError`."""
    full = name if name.startswith("trainprove_") else f"trainprove_{name.replace('-', '_')}"
    if full not in HOOK_NAMES:
        raise PluginError(f"no hook named {name!r}; hooks: {', '.join(HOOK_NAMES)}")
    return full


# --------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------


S = TypeVar("S")


@dataclass(frozen=True)
class Registered(Generic[S]):
    """One thing a plugin registered: its spec (a `GeneratorSpec` for the kind "generator", ...), and who
    registered it."""

    kind: str
    spec: S
    plugin: str
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class PluginFailure:
    """A plugin that could not be loaded: `error` is the exception's last line."""

    plugin: str
    distribution: str
    error: str
    version: str = ""


@dataclass
class PluginInfo:
    """One plugin trainprove found: loaded, failed or disabled, and what is wrong with it."""

    name: str
    """The name it has in the plugin manager: the entry-point name, or `<distribution>:<name>` when two
    distributions use one entry-point name."""
    distribution: str
    version: str
    entry_point: str = ""
    value: str = ""
    status: str = "loaded"
    """"loaded", "failed" (`reason` holds the error) or "disabled" (`reason` says by what)."""
    reason: str = ""
    problems: list[str] = field(default_factory=list)
    dist: Any = field(default=None, repr=False, compare=False)

    @property
    def summary(self) -> str:
        """The distribution's one-line summary, else the first line of the plugin module's docstring."""
        if self.dist is not None:
            try:
                summary = self.dist.metadata["Summary"]
            except Exception:  # noqa: BLE001 - broken metadata must not break a listing
                summary = None
            if summary and summary != "UNKNOWN":
                return str(summary)
        return ""


# --------------------------------------------------------------------------------------------------------
# The plugin set
# --------------------------------------------------------------------------------------------------------


@dataclass
class PluginSet:
    """The plugin manager, every plugin found, and what each registered, indexed by kind and name.

    `registry[kind][name]` lists every registration of that name: more than one is a conflict, an error
    only when `get` is asked for it.
    """

    pm: pluggy.PluginManager
    registry: dict[str, dict[str, list[Registered]]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # ---- looking things up -----------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Registered[Any]:
        """The registration of `name` under `kind` (a `records.KINDS` name); a `PluginError` listing what
        is available when there is none, or naming every plugin and distribution involved when more than
        one registers it. `generator(name)`, `suspect_adapter(name)`, ... are the same, typed."""
        if kind not in KIND:
            raise ValueError(f"no kind {kind!r}; kinds: {', '.join(KIND)}")
        found = self.registry.get(kind, {})
        claims = found.get(name, [])
        if len(claims) == 1:
            return claims[0]
        if claims:
            raise PluginError(conflict_message(kind, name, claims))
        known = ", ".join(sorted(found)) or "none"
        hints = []
        failed = [f.plugin for f in self.failures]
        if failed:
            hints.append(f"Plugins that failed to load: {', '.join(failed)} (run `trainprove plugins`).")
        disabled = sorted(p.name for p in self.plugins.values() if p.status == "disabled")
        if disabled:
            hints.append(f"Plugins not loaded ({DISABLE_ENV} or {LOAD_ENV}): {', '.join(disabled)}.")
        hint = "".join(f" {h}" for h in hints)
        raise PluginError(f"unknown {kind} {name!r}; installed: {known}.{hint}")

    def generator(self, name: str) -> Registered[GeneratorSpec]:
        return self.get("generator", name)

    def suspect_adapter(self, name: str) -> Registered[SuspectAdapterSpec]:
        return self.get("suspect", name)

    def shadow_trainer(self, name: str) -> Registered[ShadowTrainerSpec]:
        return self.get("shadow-trainer", name)

    def decision_test(self, name: str) -> Registered[DecisionTestSpec]:
        return self.get("test", name)

    def executor(self, name: str) -> Registered[ExecutorSpec]:
        return self.get("executor", name)

    def names(self, kind: str) -> list[str]:
        """The names `get(kind, name)` resolves: a name two plugins register is left out (it is an
        error to use; `all_registered` and `conflicts` still show it)."""
        return sorted(name for name, claims in self.registry.get(kind, {}).items() if len(claims) == 1)

    def all_registered(self) -> list[Registered[Any]]:
        """Every registration (both sides of a conflict too), by kind, name and plugin."""
        out = [r for kind in self.registry.values() for claims in kind.values() for r in claims]
        order = {kind.name: i for i, kind in enumerate(KINDS)}
        return sorted(out, key=lambda r: (order.get(r.kind, 99), r.name, r.plugin))

    def conflicts(self) -> list[tuple[str, str, list[Registered]]]:
        """`(kind, name, registrations)` for every name more than one plugin registers."""
        return [
            (kind, name, claims)
            for kind, table in self.registry.items()
            for name, claims in sorted(table.items())
            if len(claims) > 1
        ]

    def hooks_of(self, plugin_name: str) -> list[str]:
        """The hooks a loaded plugin implements, in hookspecs.py's order."""
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is None:
            return []
        implemented = {caller.name for caller in self.pm.get_hookcallers(plugin) or ()}
        return [h for h in HOOK_NAMES if h in implemented] + sorted(implemented - set(HOOK_NAMES))

    def commands_of(self, plugin_name: str) -> Any:
        """A fresh click group holding only the commands this plugin adds (its `trainprove_commands` called
        on a scratch group), or None when it adds none."""
        plugin = self.pm.get_plugin(plugin_name)
        if plugin is None or "trainprove_commands" not in self.hooks_of(plugin_name):
            return None
        import click

        group = click.Group("trainprove")
        self._only(plugin, "trainprove_commands")(cli=group)
        return group

    def problems_of(self, plugin_name: str) -> list[str]:
        """What is wrong with a plugin: its load failure, a shared entry-point name, conflicting names."""
        info = self.plugins.get(plugin_name)
        out = list(info.problems) if info is not None else []
        if info is not None and info.status == "failed":
            out.insert(0, f"failed to load: {info.reason}")
        for kind, name, claims in self.conflicts():
            if any(r.plugin == plugin_name for r in claims):
                out.append(conflict_message(kind, name, claims, used=False))
        from .config import shadowed_options

        out += shadowed_options(r for r in self.all_registered() if r.plugin == plugin_name)
        unknown = [h for h in self.hooks_of(plugin_name) if h not in HOOK_NAMES]
        if unknown:
            out.append(
                f"plugin {plugin_name!r} implements {', '.join(unknown)}, which trainprove never calls "
                "(a misspelt hook name?)"
            )
        return out

    def all_problems(self) -> list[str]:
        """Every load failure, collision, conflict and environment warning, one line each."""
        out = [
            f"plugin {f.plugin!r} ({f.distribution} {f.version}) failed to load: {f.error}".replace(" )", ")")
            for f in self.failures
        ]
        out += self.warnings
        out += [conflict_message(kind, name, claims, used=False) for kind, name, claims in self.conflicts()]
        out += [p for name in sorted(self.sources) for p in self.problems_of(name) if "never calls" in p]
        return out

    # ---- registering ------------------------------------------------------------------------------------

    def register(self, plugin: Any, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object (module or instance) and index what it offers.

        Raises (and registers nothing) when a registry hook fails or returns something else than spec
        records; `load_plugins` turns that into a listed failure.
        """
        self.pm.register(plugin, name=name)
        distribution = distribution or name
        self.sources[name] = (distribution, version)
        created = name not in self.plugins
        if created:
            self.plugins[name] = PluginInfo(name, distribution, version, entry_point=name)
        try:
            self._index(name)
        except BaseException:
            self._forget(name)
            if created:
                del self.plugins[name]
            raise

    def add_commands(self, group: Any, strict: bool | None = None) -> None:
        """Let every plugin add its subcommands to the click `group` (`trainprove_commands`), one plugin at
        a time: one whose hook raises loses the commands it added, is unregistered and is listed as failed,
        and the others' commands stay (`strict`, default `TRAINPROVE_STRICT_PLUGINS`: a `PluginError`)."""
        strict = strict_plugins() if strict is None else strict
        for impl in reversed(self.pm.hook.trainprove_commands.get_hookimpls()):  # pluggy's call order
            name = impl.plugin_name
            before = set(group.commands)
            try:
                self._only(impl.plugin, "trainprove_commands")(cli=group)
            except Exception as exc:  # noqa: BLE001 - one plugin's command must not break the CLI
                for added in set(group.commands) - before:
                    del group.commands[added]
                distribution, version = self.sources.get(name, (name, ""))
                if strict:
                    raise PluginError(
                        f"plugin {name!r} from {distribution} {version} failed to add its commands: {exc!r}"
                    ) from exc
                self._fail(name, distribution, version, exc)

    def observe(self, hook: str, **kwargs: Any) -> list[str]:
        """Call the lifecycle hook `hook` on one plugin at a time, in pluggy's order and traced like any
        hook call: one that raises is returned as a line naming it, and the others still run."""
        errors = []
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            try:
                self._only(impl.plugin, hook)(**kwargs)
            except Exception as exc:  # noqa: BLE001 - an observer's fault must not cost the audit
                errors.append(f"observer {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {exc}")
        return errors

    def _fail(self, name: str, distribution: str, version: str, exc: BaseException) -> None:
        """Unregister a plugin and list it as failed, with the last line of its error."""
        self._forget(name)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        info = self.plugins.get(name)
        if info is not None:
            info.status, info.reason = "failed", detail
        self.failures.append(PluginFailure(name, distribution, detail, version))

    def _only(self, plugin: Any, hook: str) -> Any:
        """A pluggy hook caller for `hook` that reaches only `plugin` (traced like any hook call)."""
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    def _index(self, plugin_name: str) -> None:
        plugin = self.pm.get_plugin(plugin_name)
        distribution, version = self.sources[plugin_name]
        staged = []
        for kind in KINDS:
            if not any(impl.plugin is plugin for impl in getattr(self.pm.hook, kind.hook).get_hookimpls()):
                continue
            for result in self._only(plugin, kind.hook)():
                if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
                    raise PluginError(
                        f"plugin {plugin_name!r} ({distribution}) returned {type(result).__name__} from "
                        f"{kind.hook}, not a list of {kind.name} specs"
                    )
                for spec in result:
                    if not isinstance(spec, kind.spec):
                        raise PluginError(
                            f"plugin {plugin_name!r} ({distribution}) returned {type(spec).__name__} "
                            f"from the {kind.name} hook {kind.hook}"
                        )
                    staged.append(Registered(kind.name, spec, plugin_name, distribution, version))
        for reg in staged:
            self.registry.setdefault(reg.kind, {}).setdefault(reg.name, []).append(reg)

    def _forget(self, plugin_name: str) -> None:
        """Undo a (partial) registration."""
        if self.pm.get_plugin(plugin_name) is not None:
            self.pm.unregister(name=plugin_name)
        self.sources.pop(plugin_name, None)
        for table in self.registry.values():
            for key in list(table):
                table[key] = [r for r in table[key] if r.plugin != plugin_name]
                if not table[key]:
                    del table[key]


def by_kind(registrations: Iterable[Registered[Any]]) -> list[tuple[Kind, list[Registered[Any]]]]:
    """`registrations` grouped by kind, in `KINDS` order (kinds with none left out)."""
    regs = list(registrations)
    groups = [(kind, [r for r in regs if r.kind == kind.name]) for kind in KINDS]
    return [(kind, members) for kind, members in groups if members]


def conflict_message(kind: str, name: str, claims: Sequence[Registered], used: bool = True) -> str:
    """Names every plugin and distribution registering one name, and how to resolve it."""
    who = " and ".join(
        f"plugin {r.plugin!r} from distribution {r.distribution} {r.version}".rstrip() for r in claims
    )
    dists = sorted({r.distribution for r in claims})
    fix = (
        f"uninstall one, or skip one with {DISABLE_ENV}={dists[0]}"
        if len(dists) > 1
        else f"fix distribution {dists[0]}"
    )
    message = f"the {kind} {name!r} is registered by {len(claims)} plugins: {who}; {fix}"
    if not used:
        message += f" (an audit that uses {name!r} stops with this error)"
    return message + "."


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------


def _short(value: Any) -> str:
    """A short readable form of a hook's arguments or result for the trace."""
    if isinstance(value, list) and value and all(hasattr(v, "name") for v in value):
        return "[" + ", ".join(f"{type(v).__name__} {v.name!r}" for v in value) + "]"
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    return short.repr(value)


def _enable_trace(pm: pluggy.PluginManager) -> None:
    def write(line: str) -> None:
        sys.stderr.write(f"[trainprove] {line}\n")

    def before(hook: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())
        plugins = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
        write(f"{hook}({args}) -> {plugins}")

    def after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        if outcome.exception is not None:
            write(f"{hook} raised {outcome.exception!r}")
        elif hook in REGISTRY_HOOKS:
            results = outcome.get_result()  # one list per plugin reached
            write(f"{hook} returned " + ("; ".join(_short(r) for r in results) if results else "nothing"))

    pm.add_hookcall_monitoring(before, after)


def new_plugin_set() -> PluginSet:
    """An empty plugin manager with trainprove's hook specs (no plugins loaded)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV, "") not in ("", "0"):
        _enable_trace(pm)
    return PluginSet(pm)


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def strict_plugins() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def _names_from_env(variable: str) -> list[str] | None:
    """The comma-separated names in `variable`, or None when it is not set."""
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return [normalize(n) for n in raw.split(",") if n.strip()]


def load_plugins(strict: bool | None = None) -> PluginSet:
    """A plugin set with every installed entry point of the group "trainprove".

    A plugin that fails to import or to register is recorded in `failures` and skipped, unless `strict`
    (default: the `TRAINPROVE_STRICT_PLUGINS` environment variable) asks for an error. Entry points with
    one name from several distributions are all loaded, as `<distribution>:<name>`. Two plugins
    registering one name under one kind are both indexed; using that name is the error (see `get`).
    `TRAINPROVE_DISABLE_PLUGINS` and `TRAINPROVE_LOAD_PLUGINS` pick plugins by distribution or entry-point
    name (comma-separated; the core distribution is always loaded unless disabled by name).
    """
    strict = strict_plugins() if strict is None else strict
    plugins = new_plugin_set()
    disable = _names_from_env(DISABLE_ENV) or []
    load_only = _names_from_env(LOAD_ENV)
    matched: set[str] = set()

    found: dict[tuple[str, str, str], tuple[metadata.EntryPoint, str, str]] = {}
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        found.setdefault((ep.name, normalize(dist), ep.value), (ep, dist, version))
    uses: dict[str, int] = {}
    for ep_name, _, _ in found:
        uses[ep_name] = uses.get(ep_name, 0) + 1
    entries = sorted(found.items(), key=lambda item: (item[0][0], item[0][1]))

    for (ep_name, _, _), (ep, dist, version) in entries:
        name = f"{dist}:{ep_name}" if uses[ep_name] > 1 else ep_name
        info = PluginInfo(name, dist, version, entry_point=ep_name, value=ep.value, dist=ep.dist)
        plugins.plugins[name] = info
        keys = {normalize(dist), normalize(ep_name), normalize(name)}
        disabled_by = keys.intersection(disable)
        loaded_by = keys.intersection(load_only or ())
        matched |= disabled_by | loaded_by
        if disabled_by:
            info.status, info.reason = "disabled", f"{DISABLE_ENV}={','.join(sorted(disabled_by))}"
            continue
        if load_only is not None and not loaded_by and normalize(dist) != CORE_DISTRIBUTION:
            info.status, info.reason = "disabled", f"not named in {LOAD_ENV}"
            continue
        try:
            plugins.register(ep.load(), name, dist, version)
        except Exception as exc:  # noqa: BLE001 - any failure inside a plugin must not break trainprove
            if strict:
                raise PluginError(f"plugin {name!r} from {dist} {version} failed to load: {exc!r}") from exc
            plugins._fail(name, dist, version, exc)

    for ep_name, count in sorted(uses.items()):
        if count < 2:
            continue
        sharing = [p for p in plugins.plugins.values() if p.entry_point == ep_name and ":" in p.name]
        message = (
            f"entry point name {ep_name!r} is used by {len(sharing)} distributions ("
            + ", ".join(f"{p.distribution} {p.version}" for p in sharing)
            + "); each is loaded under its own name: "
            + ", ".join(repr(p.name) for p in sharing)
        )
        plugins.warnings.append(message)
        for p in sharing:
            p.problems.append(message)
    for variable, names in ((DISABLE_ENV, disable), (LOAD_ENV, load_only or [])):
        for unknown in sorted(set(names) - matched):
            plugins.warnings.append(f"{variable} names {unknown!r}, which no installed plugin matches")
    return plugins
