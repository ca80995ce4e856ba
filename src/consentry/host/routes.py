"""What plugins are loaded, and the routes they contribute (under /v1/plugins/<name>/)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Router, get
from msgspec import Struct

from consentry.core.principals import READ_SCOPES, Scope
from consentry.host.manager import Plugins
from consentry.http.auth import require
from consentry.http.deps import CoreDep, PrincipalDep


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


def plugin_routers(plugins: Plugins) -> list[Any]:
    """One router per plugin that contributed routes, at /v1/plugins/<plugin>."""
    by_owner: dict[str, list[Any]] = {}
    for owner, handler in plugins.registry.routes:
        by_owner.setdefault(owner, []).append(handler)
    return [
        Router(path=f"/v1/plugins/{owner}", route_handlers=handlers, tags=[f"plugin: {owner}"])
        for owner, handlers in sorted(by_owner.items())
    ]
