"""A plugin that raises, hangs or answers garbage fails alone: other plugins still run, the
service keeps answering, core data is untouched, and the failure is named and counted."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pluggy
import pytest

from consentry.domain.errors import PluginFailed
from consentry.host.manager import Plugins
from consentry.plugins import Assignee, ConsentChange, Conversation, PluginContext, hookimpl
from consentry.testing import Service, running_service

TIMEOUT = 0.2
CORE_TABLES = ("subjects", "consent_records", "consent_state", "audit_log", "events")


def plugin(name: str, **hooks: Callable[..., Any]) -> tuple[str, types.ModuleType]:
    """A plugin module made on the spot: each keyword is a hook implementation."""
    module = types.ModuleType(f"test_plugin_{name}")
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    return name, module


async def _raise(**_: Any) -> Any:
    raise RuntimeError("boom")


async def _hang(**_: Any) -> Any:
    await asyncio.sleep(10)


def _change(subject_id: UUID) -> ConsentChange:
    return ConsentChange(subject_id, "analytics", "", "withdrawn", "api", datetime.now(UTC))


def _json_dict(result: Any) -> str | None:
    """What the DSR export contract asks: a dict that serialises to JSON."""
    if not isinstance(result, dict):
        return f"returned {type(result).__name__}, not a dict"
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return f"returned data that is not JSON-serialisable ({exc})"
    return None


def _count(result: Any) -> str | None:
    ok = isinstance(result, int) and not isinstance(result, bool) and result >= 0
    return None if ok else f"returned {result!r}, not a count of rows"


async def _snapshot(service: Service) -> dict[str, list[dict[str, Any]]]:
    return {
        table: await service.core.db.fetch(f"SELECT * FROM {table} ORDER BY 1")
        for table in CORE_TABLES
    }


async def _failures(service: Service) -> dict[str, int]:
    response = await service.client.get("/v1/plugins")
    assert response.status_code == 200, response.text
    return {p["name"]: p["failures"] for p in response.json()["items"]}


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
async def service(database_url: str, tmp_path: Path, calls: list[str]) -> AsyncIterator[Service]:
    """A service with a well-behaved plugin between three broken ones, on both engines."""

    async def good_changed(change: ConsentChange, context: PluginContext) -> None:
        calls.append(f"{context.plugin}:{change.decision}")

    async def good_export(subject_id: UUID) -> dict[str, Any]:
        return {"subject": str(subject_id)}

    async def good_erase(subject_id: UUID) -> int:
        return 0

    async def garbage_export(subject_id: UUID) -> Any:
        return {"when": object()}

    async def garbage_erase(subject_id: UUID) -> Any:
        return "3"

    async def garbage_changed(change: ConsentChange) -> Any:
        return object()  # a reaction's result is ignored: garbage here harms no one

    plugins = (
        plugin("raiser", consent_changed=_raise, dsr_export=_raise, dsr_erase=_raise),
        plugin("hanger", consent_changed=_hang, dsr_export=_hang, dsr_erase=_hang),
        plugin(
            "garbage",
            consent_changed=garbage_changed,
            dsr_export=garbage_export,
            dsr_erase=garbage_erase,
        ),
        plugin("good", consent_changed=good_changed, dsr_export=good_export, dsr_erase=good_erase),
    )
    async with running_service(
        *plugins, database_url=database_url, tmp_path=tmp_path, timeout=TIMEOUT
    ) as running:
        yield running


async def test_notify_contains_a_raising_and_a_hanging_plugin(
    service: Service, calls: list[str]
) -> None:
    """`notify` returns each failure by plugin, and still calls the well-behaved plugin."""
    subject_id = await service.customer("c-1")
    failures = await service.plugins.notify(
        "consent_changed", service.context, change=_change(subject_id)
    )
    assert failures == {
        "raiser": "RuntimeError: boom",
        "hanger": f"did not answer within {TIMEOUT:g} s",
    }
    assert calls == ["good:withdrawn"]


async def test_a_consent_request_succeeds_while_plugins_fail_its_reaction(
    service: Service, calls: list[str]
) -> None:
    """Recording consent over HTTP answers 201 and is stored though two plugins fail to react;
    the failures are counted in GET /v1/plugins."""
    await service.customer("c-2")
    response = await service.client.post(
        "/v1/customers/c-2/consents",
        json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
    )
    assert response.status_code == 201, response.text
    state = await service.client.get("/v1/customers/c-2/consents")
    assert [s["decision"] for s in state.json()["items"]] == ["granted"]
    assert calls == ["good:granted"]
    assert await _failures(service) == {"garbage": 0, "good": 0, "hanger": 1, "raiser": 1}


async def test_gather_names_every_failing_plugin(service: Service) -> None:
    """DSR export: raising, hanging and non-serialisable answers all fail, each named."""
    subject_id = await service.customer("c-3")
    with pytest.raises(PluginFailed) as failed:
        await service.plugins.gather(
            "dsr_export", service.context, _json_dict, subject_id=subject_id
        )
    assert failed.value.hook == "dsr_export"
    assert set(failed.value.failures) == {"raiser", "hanger", "garbage"}
    assert "not JSON-serialisable" in failed.value.failures["garbage"]
    for name in ("raiser", "hanger", "garbage"):
        assert name in str(failed.value)
    assert "good" not in str(failed.value)


async def test_an_erase_answering_a_string_fails_by_name(service: Service) -> None:
    subject_id = await service.customer("c-4")
    with pytest.raises(PluginFailed) as failed:
        await service.plugins.gather("dsr_erase", service.context, _count, subject_id=subject_id)
    assert failed.value.failures["garbage"] == "TypeError: returned '3', not a count of rows"
    assert set(failed.value.failures) == {"raiser", "hanger", "garbage"}


async def test_the_service_keeps_answering_and_core_data_is_untouched(service: Service) -> None:
    """After every kind of failure, core tables are as they were and HTTP still works."""
    subject_id = await service.customer("c-5", consents={"analytics": "granted"})
    before = await _snapshot(service)
    await service.plugins.notify("consent_changed", service.context, change=_change(subject_id))
    for hook, check in (("dsr_export", _json_dict), ("dsr_erase", _count)):
        with pytest.raises(PluginFailed):
            await service.plugins.gather(hook, service.context, check, subject_id=subject_id)
    assert await _snapshot(service) == before
    health = await service.client.get("/health")
    assert health.status_code == 200
    customer = await service.client.get("/v1/customers/c-5")
    assert customer.status_code == 200
    # consent_changed twice (recording the grant, then by hand), dsr_export, dsr_erase
    assert await _failures(service) == {"garbage": 2, "good": 0, "hanger": 4, "raiser": 4}


async def test_a_plugin_cannot_write_core_tables(database_url: str, tmp_path: Path) -> None:
    """`context.execute` is for the plugin's own tables; a write to a core table is refused
    (by the engine: see test_plugin_sql_wall), and the failure names the rule."""

    async def vandal_erase(subject_id: UUID, context: PluginContext) -> int:
        await context.execute("DELETE FROM subjects WHERE id = ?", subject_id)
        return 1

    vandal = plugin("vandal", dsr_erase=vandal_erase)
    async with running_service(vandal, database_url=database_url, tmp_path=tmp_path) as s:
        subject_id = await s.customer("c-6")
        with pytest.raises(PluginFailed) as failed:
            await s.plugins.gather("dsr_erase", s.context, _count, subject_id=subject_id)
        why = failed.value.failures["vandal"]
        assert why.startswith("ForeignTable: plugin vandal may use only its own tables")
        assert "customer data comes through context.gate" in why
        assert await s.core.db.fetch("SELECT id FROM subjects") != []


def _conversation() -> Conversation:
    return Conversation("support@example.com", "en", uuid4(), ("refund",))


def test_assign_skips_raising_garbage_and_undecided_plugins() -> None:
    """The first plugin that answers with an Assignee wins; one that raises or answers garbage
    is skipped and counted; None passes to the next."""

    def raising(conversation: Conversation) -> Assignee:
        raise RuntimeError("routing table missing")

    plugins = Plugins.of(
        plugin("a_raises", assign_conversation=raising),
        plugin("b_garbage", assign_conversation=lambda conversation: "billing"),
        plugin("c_undecided", assign_conversation=lambda conversation: None),
        plugin("d_team", assign_conversation=lambda conversation: Assignee("team", "support")),
        plugin("e_person", assign_conversation=lambda conversation: Assignee("person", "ada")),
    )
    assert plugins.assign(conversation=_conversation()) == Assignee("team", "support")
    assert plugins.failures == {
        "a_raises": 1,
        "b_garbage": 1,
        "c_undecided": 0,
        "d_team": 0,
        "e_person": 0,
    }


def test_assign_with_no_answer_is_none() -> None:
    plugins = Plugins.of(plugin("undecided", assign_conversation=lambda conversation: None))
    assert plugins.assign(conversation=_conversation()) is None


def test_a_misspelled_hook_fails_loading_naming_it() -> None:
    """A hookimpl that matches no hook (`consent_chnged`) stops loading with its name."""

    async def consent_chnged(change: ConsentChange) -> None:
        return None

    with pytest.raises(pluggy.PluginValidationError) as failed:
        Plugins.of(plugin("typo", consent_chnged=consent_chnged))
    assert "consent_chnged" in str(failed.value)
    assert "test_plugin_typo" in str(failed.value)


def test_a_hookimpl_asking_for_an_unknown_argument_fails_loading() -> None:
    """An implementation that takes an argument the hook does not pass is refused at load."""

    async def dsr_export(subject_id: UUID, subject_email: str) -> dict[str, Any]:
        return {}

    with pytest.raises(pluggy.PluginValidationError, match="subject_email"):
        Plugins.of(plugin("greedy", dsr_export=dsr_export))
