"""Plugins in data-subject requests: their data goes into the export bundle, their erase hook runs
in every erasure, and one that fails stops that customer's erasure loudly; a retry finishes the
rest without redoing the done ones."""

from __future__ import annotations

import io
import json
import types
import zipfile
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.dsr.bundle import read_bundle
from consentry.host.manager import Plugins
from consentry.plugins import PluginContext, hookimpl
from consentry.settings import Settings


class Tickets:
    """A plugin's own store of support tickets per customer, and a switch to make it fail."""

    def __init__(self) -> None:
        self.held: dict[str, list[str]] = {}
        self.failing: set[str] = set()  # erasure fails for these subjects
        self.export_fails = False
        self.erase_calls = 0

    def module(self) -> tuple[str, types.ModuleType]:
        async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
            if self.export_fails:
                raise RuntimeError("ticket system unavailable")
            return {"tickets": self.held.get(str(subject_id), [])}

        async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
            self.erase_calls += 1
            if str(subject_id) in self.failing:
                raise RuntimeError("ticket system unavailable")
            return len(self.held.pop(str(subject_id), []))

        module = types.ModuleType("test_plugin_tickets")
        for name, fn in (("dsr_export", dsr_export), ("dsr_erase", dsr_erase)):
            setattr(module, name, hookimpl(fn))
        return "tickets", module


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[tuple[Core, httpx.AsyncClient, Tickets]]:
    tickets = Tickets()
    core = await open_core(settings, plugins=Plugins.of(tickets.module()))
    try:
        key = await bootstrap_admin_key(core)
        app = create_app(settings, core=core)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            yield core, client, tickets
    finally:
        await close_core(core)


async def make(client: httpx.AsyncClient, ext: str) -> str:
    r = await client.put(f"/v1/customers/{ext}", json={"identities": {"email": f"{ext}@x.io"}})
    assert r.status_code == 201, r.text
    subject: str = r.json()["id"]
    return subject


async def test_export_bundle_holds_core_and_plugin_data(
    service: tuple[Core, httpx.AsyncClient, Tickets],
) -> None:
    _, client, tickets = service
    subject = await make(client, "exp-1")
    tickets.held[subject] = ["T-1: cannot log in", "T-2: refund"]
    for i in range(3):
        r = await client.post("/v1/customers/exp-1/events", json={"name": f"e{i}"})
        assert r.status_code == 201
    r = await client.post(
        "/v1/customers/exp-1/consents",
        json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
    )
    r = await client.post("/v1/requests", json={"external_id": "exp-1", "type": "portability"})
    rid = r.json()["id"]
    await client.post(f"/v1/requests/{rid}/verify", json={"method": "account login"})
    r = await client.post(f"/v1/requests/{rid}/fulfil")
    assert r.status_code == 200, r.text
    export = r.json()["result"]["export"]
    assert export["events"] == 3 and export["plugins"] == ["tickets"]

    r = await client.get(f"/v1/requests/{rid}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    bundle = read_bundle(r.content)  # checks every checksum in the manifest
    files = bundle["files"]
    assert files["customer.json"]["identities"] == {"email": "exp-1@x.io"}
    assert [e["name"] for e in files["events.json"]] == ["e0", "e1", "e2"]
    [record] = files["consents.json"]["history"]
    assert record["purpose"] == "analytics" and record["notice_text"]  # what the customer saw
    assert files["plugins/tickets.json"] == {"tickets": tickets.held[subject]}
    assert [x["id"] for x in files["requests.json"]] == [rid]
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "summary.html" in names and "manifest.json" in names
    summary = zipfile.ZipFile(io.BytesIO(r.content)).read("summary.html").decode()
    assert "T-1: cannot log in" in summary and "analytics" in summary

    r = await client.get("/v1/audit/entries", params={"action": "dsr.*"})
    actions = sorted(e["action"] for e in r.json()["items"] if "export" in e["action"])
    assert actions == ["dsr.export.downloaded", "dsr.exported"]


async def test_a_failing_export_hook_fails_the_request_loudly(
    service: tuple[Core, httpx.AsyncClient, Tickets],
) -> None:
    _, client, tickets = service
    await make(client, "exp-2")
    tickets.export_fails = True
    r = await client.post("/v1/requests", json={"external_id": "exp-2", "type": "access",
                                                "verified_by": "login"})  # fmt: skip
    rid = r.json()["id"]
    r = await client.post(f"/v1/requests/{rid}/fulfil")
    assert r.status_code == 500 and "tickets" in r.json()["detail"]
    r = await client.get(f"/v1/requests/{rid}")
    assert r.json()["state"] == "in_progress"
    assert r.json()["history"][-1]["action"] == "failed"
    assert r.json()["history"][-1]["failed_plugins"] == "tickets"
    tickets.export_fails = False
    r = await client.post(f"/v1/requests/{rid}/fulfil")
    assert r.status_code == 200 and r.json()["state"] == "completed"


async def test_bulk_erasure_partial_failure_then_retry(
    service: tuple[Core, httpx.AsyncClient, Tickets],
) -> None:
    core, client, tickets = service
    subjects = {f"blk-{i}": await make(client, f"blk-{i}") for i in range(4)}
    for ext, sid in subjects.items():
        tickets.held[sid] = [f"ticket of {ext}"]
    tickets.failing = {subjects["blk-2"]}
    ids = list(subjects)
    r = await client.post("/v1/erasures", json={"external_ids": ids})
    body = r.json()
    assert body["summary"] == {"erased": 3, "already_erased": 0, "not_found": 0, "failed": 1}
    [failed] = [x for x in body["results"] if x["status"] == "failed"]
    assert failed["external_id"] == "blk-2"
    assert "tickets" in failed["detail"] and "ticket system unavailable" in failed["detail"]
    # nothing of blk-2 was destroyed: its data key is still there, its rows too
    assert await core.keys.get(subjects["blk-2"]) is not None
    assert (await client.get("/v1/customers/blk-2")).status_code == 200

    tickets.failing.clear()
    calls = tickets.erase_calls
    r = await client.post("/v1/erasures", json={"external_ids": ids})
    assert r.json()["summary"] == {"erased": 1, "already_erased": 3, "not_found": 0, "failed": 0}
    assert tickets.erase_calls == calls + 1  # only blk-2's erasure ran again
    assert tickets.held == {}
    # the retry carried on with the same request, which records the failure and the success
    r = await client.get("/v1/requests", params={"customer": "blk-2"})
    assert r.json()["items"] == []  # erased: the list filters by a live external id
    requests = (await client.get("/v1/requests", params={"type": "erasure"})).json()["items"]
    assert len(requests) == 4 and all(x["state"] == "completed" for x in requests)
    [retried] = [x for x in requests if any(h["action"] == "failed" for h in x["history"])]
    assert retried["result"]["erasure"]["erased"]["plugins"] == {"tickets": 1}
    assert "ticket of" not in json.dumps(retried)
