"""Loading plugins and calling them safely.

Every plugin, first-party or not, is a module named by an entry point in the `consentry` group;
`CONSENTRY_PLUGINS` (names, comma-separated; empty: all installed) and
`CONSENTRY_PLUGINS_DISABLED` choose among them. One `Plugins` per app: nothing is global.

Each implementation is called on its own, so a failure is the failing plugin's alone: it is
logged with the plugin and hook, counted (shown by `GET /v1/plugins`), and, for hooks whose
result the caller needs (DSR), raised as `PluginFailed` naming every plugin that failed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType, ModuleType
from typing import Any

import click
import pluggy
import structlog

from consentry.domain.errors import PluginFailed
from consentry.host.settings import read_plugin_settings
from consentry.plugins import hookspecs
from consentry.plugins.types import Assignee, Capability, Channel, PluginContext, Setting
from consentry.settings import PluginSources

log = structlog.get_logger("consentry.plugins")

ENTRY_POINT_GROUP = "consentry"
REGISTRATIONS = {
    "register_settings": "settings",  # first: the others may take the settings it declares
    "register_capabilities": "capabilities",
    "register_routes": "routes",
    "register_tables": "tables",
    "register_commands": "commands",
    "register_channels": "channels",
    "register_template_filters": "filters",
}


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    capabilities: tuple[str, ...]
    failures: int


@dataclass
class Registry:
    """What plugins contributed through the registration hooks, with the owner of each."""

    capabilities: dict[str, tuple[str, Capability]] = field(default_factory=dict)
    routes: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[tuple[str, type[Any]]] = field(default_factory=list)
    commands: dict[str, tuple[str, click.Command]] = field(default_factory=dict)
    channels: dict[str, tuple[str, Channel]] = field(default_factory=dict)
    filters: dict[str, tuple[str, Callable[..., Any]]] = field(default_factory=dict)
    settings: dict[str, list[Setting]] = field(default_factory=dict)  # declared, by plugin


def _version(module: ModuleType, dist: metadata.Distribution | None) -> str:
    if dist is not None:
        return dist.version
    return str(getattr(module, "__version__", "unknown"))


def discover(enabled: Iterable[str] = (), disabled: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """(name, module) for every installed plugin the settings allow, sorted by name."""
    wanted, unwanted = set(enabled), set(disabled)
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (wanted and ep.name not in wanted) or ep.name in unwanted:
            continue
        found.append((ep.name, ep))
    missing = wanted - {name for name, _ in found}
    if missing:
        raise ValueError(f"plugins not installed: {', '.join(sorted(missing))}")
    return sorted(found, key=lambda item: item[0])


def first_party() -> list[str]:
    """The plugins shipped with consentry itself (its own distribution's entry points)."""
    return sorted(
        ep.name
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.name == "consentry"
    )


class Plugins:
    """The plugins of one app: a pluggy manager, what they registered, safe calls."""

    def __init__(
        self,
        modules: Iterable[tuple[str, ModuleType, str]],
        *,
        timeout: float,
        sources: PluginSources | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.versions: dict[str, str] = {}
        for name, module, version in modules:
            self.manager.register(module, name=name)
            self.versions[name] = version
        self.manager.check_pending()  # a misspelled hook fails loudly, naming the plugin
        self.timeout = timeout
        self.failures: dict[str, int] = dict.fromkeys(self.versions, 0)
        self.registry = Registry()
        self.settings: dict[str, dict[str, Any]] = {}  # each plugin's, read and checked
        for hook in REGISTRATIONS:
            self._collect(hook)
            if hook == "register_settings":
                self._read_settings(sources or PluginSources())

    @classmethod
    def load(
        cls,
        enabled: Iterable[str] = (),
        disabled: Iterable[str] = (),
        *,
        timeout: float = 5.0,
        sources: PluginSources | None = None,
    ) -> Plugins:
        modules = []
        for name, ep in discover(enabled, disabled):
            module = ep.load()
            modules.append((name, module, _version(module, ep.dist)))
        return cls(modules, timeout=timeout, sources=sources)

    @classmethod
    def of(
        cls,
        *plugins: tuple[str, ModuleType],
        timeout: float = 5.0,
        sources: PluginSources | None = None,
    ) -> Plugins:
        """Exactly these plugin modules, by name (tests, and the plugin test harness); their
        settings from `sources` (default: the process environment)."""
        modules = [(name, module, _version(module, None)) for name, module in plugins]
        return cls(modules, timeout=timeout, sources=sources)

    # -- registration ------------------------------------------------------------------------

    def _impls(self, hook: str) -> list[Any]:
        return list(getattr(self.manager.hook, hook).get_hookimpls())

    def _collect(self, hook: str) -> None:
        for impl in self._impls(hook):
            owner = impl.plugin_name
            register = self._register_for(hook, owner)
            group = click.Group(owner)  # commands: each plugin adds to a group of its own
            given = {
                "register": register,
                "group": group,
                "settings": MappingProxyType(self.settings.get(owner, {})),
            }
            impl.function(*[given[a] for a in impl.argnames])
            for name, command in group.commands.items():
                register(name, command)

    def _read_settings(self, sources: PluginSources) -> None:
        for owner in self.versions:
            declared = self.registry.settings.get(owner, [])
            self.settings[owner] = read_plugin_settings(owner, declared, sources)

    def _register_for(self, hook: str, owner: str) -> Callable[..., None]:
        r = self.registry

        def unique(kind: str, table: dict[str, Any], name: str, value: Any) -> None:
            if name in table and table[name][0] != owner:
                raise ValueError(f"{kind} {name!r} is registered by {table[name][0]} and {owner}")
            table[name] = (owner, value)

        def register(*args: Any) -> None:
            kind = REGISTRATIONS[hook]
            if kind == "capabilities":
                unique("capability", r.capabilities, args[0].name, args[0])
            elif kind == "routes":
                r.routes.append((owner, args[0]))
            elif kind == "settings":
                r.settings.setdefault(owner, []).append(args[0])
            elif kind == "tables":
                r.tables.append((owner, args[0]))
            elif kind == "commands":
                unique("command", r.commands, args[0], args[1])
            elif kind == "channels":
                unique("channel", r.channels, args[0].name, args[0])
            else:
                unique("template filter", r.filters, args[0], args[1])

        return register

    # -- introspection ------------------------------------------------------------------------

    def implements(self, hook: str) -> bool:
        return bool(self._impls(hook))

    def names(self) -> list[str]:
        return sorted(self.versions)

    def info(self) -> list[PluginInfo]:
        hooks: dict[str, list[str]] = {n: [] for n in self.versions}
        for name, caller in vars(self.manager.hook).items():
            for impl in getattr(caller, "get_hookimpls", list)():
                hooks.setdefault(impl.plugin_name, []).append(name)
        return [
            PluginInfo(
                name,
                self.versions[name],
                tuple(sorted(hooks.get(name, []))),
                tuple(sorted(c for c, (o, _) in self.registry.capabilities.items() if o == name)),
                self.failures.get(name, 0),
            )
            for name in self.names()
        ]

    # -- calls -----------------------------------------------------------------------------------

    async def _call(self, impl: Any, hook: str, kwargs: dict[str, Any]) -> Any:
        result = impl.function(*[kwargs[a] for a in impl.argnames])
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, self.timeout)
        return result

    def _failed(self, owner: str, hook: str, exc: BaseException) -> str:
        why = (
            f"did not answer within {self.timeout:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {exc}"
        )
        self.failures[owner] = self.failures.get(owner, 0) + 1
        log.error("plugin.failed", plugin=owner, hook=hook, error=why)
        return why

    async def notify(
        self, hook: str, context_for: Callable[[str], PluginContext], **kwargs: Any
    ) -> dict[str, str]:
        """Call every plugin's `hook` (a reaction); failures are contained, returned by plugin."""
        failures: dict[str, str] = {}
        for impl in self._impls(hook):
            args = {**kwargs, "context": context_for(impl.plugin_name)}
            try:
                await self._call(impl, hook, args)
            except Exception as exc:  # contained: the plugin's failure is its own
                failures[impl.plugin_name] = self._failed(impl.plugin_name, hook, exc)
        return failures

    async def gather(
        self,
        hook: str,
        context_for: Callable[[str], PluginContext],
        check: Callable[[Any], str | None],
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Every plugin's result for `hook`, checked by `check` (None: fine, else why not);
        `PluginFailed` naming every plugin that raised, hung or returned garbage."""
        results: dict[str, Any] = {}
        failures: dict[str, str] = {}
        for impl in self._impls(hook):
            owner = impl.plugin_name
            try:
                result = await self._call(impl, hook, {**kwargs, "context": context_for(owner)})
                problem = check(result)
                if problem:
                    raise TypeError(problem)
                results[owner] = result
            except Exception as exc:  # reported all together below
                failures[owner] = self._failed(owner, hook, exc)
        if failures:
            raise PluginFailed(hook, failures)
        return results

    def assign(self, **kwargs: Any) -> Assignee | None:
        """`assign_conversation`: the first plugin that answers with an Assignee wins; one that
        raises or answers garbage is skipped (and counted)."""
        for impl in self._impls("assign_conversation"):
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:  # skipped: the next plugin decides
                self._failed(impl.plugin_name, "assign_conversation", exc)
                continue
            if result is None:
                continue
            if isinstance(result, Assignee):
                return result
            self._failed(
                impl.plugin_name,
                "assign_conversation",
                TypeError(f"returned {type(result).__name__}, not an Assignee"),
            )
        return None
