"""What plugins are loaded, and the routes they contribute (under /v1/plugins/<name>/)."""

from __future__ import annotations

from inspect import signature
from typing import Any

from litestar import Controller, Router, get
from litestar.di import Provide
from litestar.routes import HTTPRoute
from msgspec import Struct

from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.host.manager import Plugins
from consentry.http.deps import CoreDep, PrincipalDep
from consentry.plugins.web import RouteContext


class PluginOut(Struct):
    name: str
    version: str
    hooks: list[str]
    capabilities: list[str]
    failures: int


class PluginList(Struct):
    items: list[PluginOut]


class PluginController(Controller):
    path = "/v1/plugins"
    tags = ["plugins"]

    @get(
        "/",
        summary="Loaded plugins: version, hooks, capabilities, failures so far",
        description="What is installed and enabled, the hooks each implements, the capabilities it"
        " declared (and so the purposes it needs), and how often it failed since start.",
        operation_id="listPlugins",
    )
    async def list_plugins(self, core: CoreDep, principal: PrincipalDep) -> PluginList:
        require(principal, Scope.ADMIN, *READ_SCOPES)
        return PluginList(
            [
                PluginOut(p.name, p.version, list(p.hooks), list(p.capabilities), p.failures)
                for p in core.plugins.info()
            ]
        )


class CoreRefused(TypeError):
    """A plugin route asked for the core: plugin routes get their plugin's context instead."""


def _context_of(owner: str) -> Any:
    """The `context` dependency of `owner`'s routes: its context, bound by the host."""

    def provide_context(core: CoreDep) -> RouteContext:
        return core.plugin_context(owner)

    return Provide(provide_context, sync_to_thread=False)


def _refuse_core(owner: str, router: Router) -> None:
    for route in router.routes:
        for handler in route.route_handlers if isinstance(route, HTTPRoute) else ():
            if "core" in signature(handler.fn).parameters:
                raise CoreRefused(
                    f"plugin {owner}: route {handler.handler_name} asks for `core`; a plugin"
                    " route takes `context: consentry.plugins.ContextDep`, bound to the plugin"
                )


def plugin_routers(plugins: Plugins) -> list[Any]:
    """One router per plugin that contributed routes, at /v1/plugins/<plugin>; each of its
    handlers gets the plugin's own context as `context`, and none may ask for the core."""
    by_owner: dict[str, list[Any]] = {}
    for owner, handler in plugins.registry.routes:
        by_owner.setdefault(owner, []).append(handler)
    routers = []
    for owner, handlers in sorted(by_owner.items()):
        router = Router(
            path=f"/v1/plugins/{owner}",
            route_handlers=handlers,
            tags=[f"plugin: {owner}"],
            dependencies={"context": _context_of(owner)},
        )
        _refuse_core(owner, router)
        routers.append(router)
    return routers
