"""The plugin contract is the only door: a plugin's routes receive a context the host bound to
that plugin (its name, gate, tables, settings and cache), never the core; nothing a plugin holds
lets it act under another plugin's name; and the first-party plugins import only the contract."""

from __future__ import annotations

import ast
import contextlib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import get

from consentry.app import create_app
from consentry.host.context import ForeignIdentity
from consentry.host.manager import Plugins
from consentry.host.routes import CoreRefused
from consentry.http.deps import CoreDep
from consentry.plugins import (
    ContextDep,
    GateRefused,
    PluginTx,
    PrincipalDep,
    Scope,
    hookimpl,
    require,
)
from consentry.settings import Settings
from consentry.testing import Service, running_service

ROOT = Path(__file__).resolve().parents[2]
CAPABILITY = "templates.render"  # gated by the default policy on personalization


def _whoami() -> Any:
    """A route that answers its context's plugin, counts its calls in the context's cache, and
    asks the gate for a view of the customer (refused: nobody consented)."""

    @get("/whoami")
    async def whoami(
        context: ContextDep, principal: PrincipalDep, external_id: str
    ) -> dict[str, Any]:
        require(principal, Scope.BACKEND_READ)
        context.cache["calls"] = context.cache.get("calls", 0) + 1
        subject_id = await context.gate.subject_id(external_id)
        with contextlib.suppress(GateRefused):
            await context.gate.view(CAPABILITY, subject_id)
        return {"plugin": context.plugin, "calls": context.cache["calls"]}

    return whoami


def _routing(name: str, handler: Any) -> tuple[str, types.ModuleType]:
    module = types.ModuleType(f"test_plugin_{name}")

    def register_routes(register: Callable[[Any], None]) -> None:
        register(handler)

    module.register_routes = hookimpl(register_routes)  # type: ignore[attr-defined]
    return name, module


async def _actors(service: Service, action: str) -> list[str]:
    rows = await service.core.db.fetch(
        "SELECT actor FROM audit_log WHERE action = ? ORDER BY seq", action
    )
    return [r["actor"] for r in rows]


async def test_each_plugin_route_gets_the_context_of_its_own_plugin(tmp_path: Path) -> None:
    """The same handler code mounted by two plugins answers each plugin's name, keeps a cache
    per plugin, and the gate audits each view refusal under the plugin that mounted it."""
    alpha, beta = _routing("alpha", _whoami()), _routing("beta", _whoami())
    async with running_service(alpha, beta, tmp_path=tmp_path) as service:
        await service.customer("c-1")
        answers = []
        for plugin in ("alpha", "alpha", "beta"):
            r = await service.client.get(
                f"/v1/plugins/{plugin}/whoami", params={"external_id": "c-1"}
            )
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert answers == [
            {"plugin": "alpha", "calls": 1},
            {"plugin": "alpha", "calls": 2},
            {"plugin": "beta", "calls": 1},
        ]
        actors = await _actors(service, "plugin.view_refused")
        assert actors == ["plugin:alpha", "plugin:alpha", "plugin:beta"]


async def test_hooks_and_routes_share_the_plugins_one_context(tmp_path: Path) -> None:
    """What a hook receives and what a route receives is the same context, per plugin."""
    alpha = _routing("alpha", _whoami())
    async with running_service(alpha, tmp_path=tmp_path) as service:
        await service.customer("c-1")
        service.context("alpha").cache["calls"] = 41
        r = await service.client.get("/v1/plugins/alpha/whoami", params={"external_id": "c-1"})
        assert r.json() == {"plugin": "alpha", "calls": 42}
        assert service.context("alpha") is service.context("alpha")
        assert service.context("alpha") is not service.context("beta")


async def test_a_plugin_cannot_rename_its_context_or_its_gate(tmp_path: Path) -> None:
    """The identity the host bound is read-only: neither the context's nor the gate's plugin
    name, nor the gate itself, can be swapped for another plugin's."""
    async with running_service(tmp_path=tmp_path) as service:
        context, other = service.context("alpha"), service.context("segments")
        with pytest.raises(AttributeError):
            context.plugin = "segments"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            context.gate.plugin = "segments"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            context.gate = other.gate  # type: ignore[misc]
        assert (context.plugin, context.gate.plugin) == ("alpha", "alpha")


@pytest.mark.parametrize(
    ("actor", "action"),
    [
        ("plugin:segments", "alpha.thing_done"),  # another plugin
        ("system:consentry", "alpha.thing_done"),  # the system
        ("key:k-1", "plugin.view"),  # the gate's own action
    ],
)
async def test_a_plugin_cannot_audit_as_someone_else(
    tmp_path: Path, actor: str, action: str
) -> None:
    """`tx.audit` records the caller (a principal's actor) or the plugin itself; an entry as
    another plugin, as the system, or as the gate fails the write, and nothing commits."""
    async with running_service(tmp_path=tmp_path) as service:
        context = service.context("alpha")

        async def forge(tx: PluginTx) -> None:
            tx.audit(actor, action, "thing:1")

        async def honest(tx: PluginTx) -> None:
            tx.audit("key:k-1", "alpha.thing_done", "thing:1")
            tx.audit("plugin:alpha", "alpha.thing_swept", "thing:1")

        with pytest.raises(ForeignIdentity, match="plugin alpha may audit as the caller"):
            await context.write(forge)
        await context.write(honest)
        rows = await service.core.db.fetch(
            "SELECT actor, action FROM audit_log WHERE target = 'thing:1' ORDER BY seq"
        )
        assert [(r["actor"], r["action"]) for r in rows] == [
            ("key:k-1", "alpha.thing_done"),
            ("plugin:alpha", "alpha.thing_swept"),
        ]


def test_a_plugin_route_that_asks_for_the_core_stops_the_start(tmp_path: Path) -> None:
    """A route taking `core` would hold every table and any identity: the app refuses it."""

    @get("/sneaky")
    async def sneaky(core: CoreDep) -> dict[str, str]:
        return {"policy": core.policy.version}

    plugins = Plugins.of(_routing("sneaky", sneaky))
    with pytest.raises(CoreRefused, match=r"plugin sneaky: route .*sneaky.* asks for `core`"):
        create_app(Settings(data_dir=tmp_path), core=_core_stub(plugins))


def _core_stub(plugins: Plugins) -> Any:
    """`create_app` only mounts routes here; it needs the core's plugins and nothing else."""
    return types.SimpleNamespace(plugins=plugins)


def _consentry_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "consentry"
            }
    return found


@pytest.mark.parametrize(
    "folder",
    [
        "plugins/consentry_segments",
        "plugins/consentry_templates",
        "plugins/consentry_email",
        "plugins/consentry-chat/src",
    ],
)
def test_plugins_import_only_the_contract(folder: str) -> None:
    """A plugin's source imports `consentry.plugins` (and its modules) and nothing else of
    consentry: the contract is the only door."""
    beyond = sorted(
        line
        for line in _consentry_imports(ROOT / folder)
        if not line.split(": ")[1].startswith("consentry.plugins")
    )
    assert beyond == []


def test_the_contract_imports_nothing_above_domain() -> None:
    """`consentry.plugins` stands on the pure libraries only (it is what plugins import)."""
    allowed = ("consentry.plugins", "consentry.domain", "consentry.query.ast")
    beyond = sorted(
        line
        for line in _consentry_imports(ROOT / "src/consentry/plugins")
        if not line.split(": ")[1].startswith(allowed)
    )
    assert beyond == []
