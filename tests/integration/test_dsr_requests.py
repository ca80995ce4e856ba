"""Data-subject requests over the API: the workflow, its clocks (with an injected clock), filters,
the errors a person can act on, customer self-service and the audit trail of every step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from consentry.boot import load_plugins
from consentry.clock import FrozenClock
from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.testing import running_service

Client = httpx.AsyncClient
# a Friday, the last day of January in a leap year
RECEIVED = datetime(2028, 1, 31, 10, 0, tzinfo=UTC)


@asynccontextmanager
async def frozen(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[Core, Client]]:
    """The service as shipped (first-party plugins) on this test's database, at `clock`."""
    async with running_service(
        loaded=load_plugins(settings),
        database_url=settings.database_url,
        tmp_path=settings.data_dir,
        clock=clock,
    ) as service:
        yield service.core, service.client


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(RECEIVED)


async def customer(client: Client, ext: str, region: str) -> None:
    r = await client.put(
        f"/v1/customers/{ext}",
        json={"region": region, "identities": {"email": f"{ext}@example.com"}},
    )
    assert r.status_code == 201, r.text


async def file(client: Client, ext: str, kind: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/requests", json={"external_id": ext, "type": kind, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_gdpr_clock_extension_and_overdue(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "eu-1", "EU")
        req = await file(client, "eu-1", "access")
        assert req["regulation"] == "GDPR" and req["state"] == "received"
        # Jan 31 + 1 month = Feb 29 (leap year), a Tuesday: no roll forward
        assert req["clocks"]["respond_by"] == "2028-02-29"
        assert req["clocks"]["due"] == "2028-02-29"
        assert req["clocks"]["days_left"] == 29
        assert req["clocks"]["overdue"] is False
        assert req["clocks"]["acknowledge_by"] is None
        rid = req["id"]

        # an extension needs a reason the customer is told
        r = await client.post(f"/v1/requests/{rid}/extend", json={"reason": ""})
        assert r.status_code == 400 or r.status_code == 422, r.text
        clock.advance(days=20)
        r = await client.post(
            f"/v1/requests/{rid}/extend", json={"reason": "the request covers ten years"}
        )
        assert r.status_code == 200, r.text
        ext = r.json()
        # receipt + 3 months = Apr 30 (a Sunday): rolls forward to Monday May 1
        assert ext["clocks"]["extended_to"] == "2028-05-01"
        assert ext["clocks"]["due"] == "2028-05-01"
        assert ext["notes"] == {"extend_reason": "the request covers ten years"}
        r = await client.post(f"/v1/requests/{rid}/extend", json={"reason": "again"})
        assert r.status_code == 409
        assert "already extended" in r.json()["detail"] and "one extension" in r.json()["detail"]

        clock.now = datetime(2028, 5, 2, 9, 0, tzinfo=UTC)
        r = await client.get(f"/v1/requests/{rid}")
        assert r.json()["clocks"]["overdue"] is True
        assert r.json()["clocks"]["days_left"] == -1


async def test_extension_after_the_first_deadline_is_refused(
    settings: Settings, clock: FrozenClock
) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "eu-2", "EU")
        rid = (await file(client, "eu-2", "erasure"))["id"]
        clock.now = datetime(2028, 3, 1, 0, 0, 1, tzinfo=UTC)  # the day after Feb 29
        r = await client.post(f"/v1/requests/{rid}/extend", json={"reason": "late"})
        assert r.status_code == 409
        assert "original deadline (2028-02-29) has passed" in r.json()["detail"]


async def test_ccpa_clocks_and_acknowledgement(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "ca-1", "US-CA")
        req = await file(client, "ca-1", "access")
        assert req["regulation"] == "CCPA"
        # Fri Jan 31 2028: 10 business days -> Mon Feb 14; 45 calendar days -> Mar 16
        assert req["clocks"]["acknowledge_by"] == "2028-02-14"
        assert req["clocks"]["respond_by"] == "2028-03-16"
        clock.now = datetime(2028, 2, 15, 8, tzinfo=UTC)
        r = await client.get(f"/v1/requests/{req['id']}")
        assert r.json()["clocks"]["acknowledgement_overdue"] is True
        r = await client.post(f"/v1/requests/{req['id']}/acknowledge")
        assert r.status_code == 200
        assert r.json()["clocks"]["acknowledgement_overdue"] is False
        r = await client.post(f"/v1/requests/{req['id']}/acknowledge")
        assert r.status_code == 409
        r = await client.post(f"/v1/requests/{req['id']}/extend", json={"reason": "volume"})
        assert r.json()["clocks"]["extended_to"] == "2028-04-30"  # receipt + 90 days


async def test_opt_out_of_sale_applies_at_once(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "ca-2", "US-CA")
        r = await client.get("/v1/customers/ca-2/check", params={"purpose": "sale_or_share"})
        assert r.json()["decision"] == "allow"  # opt-out model: allowed until the customer opts out
        req = await file(client, "ca-2", "opt_out_sale_share")
        assert req["state"] == "completed"
        assert req["clocks"]["respond_by"] == "2028-02-21"  # 15 business days
        assert req["result"]["opt_out"]["withdrawn"] == ["sale_or_share"]
        r = await client.get("/v1/customers/ca-2/check", params={"purpose": "sale_or_share"})
        assert r.json()["decision"] == "deny"
        history = (await client.get("/v1/customers/ca-2/consents/history")).json()["items"]
        assert history[-1]["source"] == "dsr_request"
        assert history[-1]["decision"] == "withdrawn"


async def test_workflow_errors_rejection_and_audit(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "eu-3", "EU")
        r = await client.post("/v1/requests", json={"external_id": "nobody", "type": "access"})
        assert r.status_code == 404 and "no customer" in r.json()["detail"]
        r = await client.post(
            "/v1/requests", json={"external_id": "eu-3", "type": "access", "regulation": "XYZ"}
        )
        assert r.status_code == 422 and "regulations" in r.json()["detail"]
        rid = (await file(client, "eu-3", "rectification"))["id"]
        r = await client.post(f"/v1/requests/{rid}/fulfil", json={"note": "fixed the name"})
        assert r.status_code == 409 and "verify" in r.json()["detail"]
        r = await client.post(f"/v1/requests/{rid}/verify", json={"method": "signed-in account"})
        assert r.status_code == 200 and r.json()["state"] == "verified"
        r = await client.post(f"/v1/requests/{rid}/fulfil", json={})
        assert r.status_code == 422 and "say what was done" in r.json()["detail"]
        r = await client.post(f"/v1/requests/{rid}/fulfil", json={"note": "fixed the name"})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["state"] == "completed" and done["clocks"]["days_left"] is None
        assert [h["action"] for h in done["history"]] == [
            "received",
            "verified",
            "started",
            "completed",
        ]
        r = await client.post(f"/v1/requests/{rid}/reject", json={"reason": "late"})
        assert r.status_code == 409 and "already completed" in r.json()["detail"]

        other = (await file(client, "eu-3", "restrict"))["id"]
        r = await client.post(f"/v1/requests/{other}/reject", json={"reason": "duplicate"})
        assert r.status_code == 200 and r.json()["state"] == "rejected"
        assert r.json()["notes"] == {"reject_reason": "duplicate"}

        r = await client.get(
            "/v1/audit/entries", params={"customer": "eu-3", "action": "dsr.*", "order": "asc"}
        )
        actions = [e["action"] for e in r.json()["items"]]
        assert actions == [
            "dsr.received",
            "dsr.verified",
            "dsr.started",
            "dsr.completed",
            "dsr.received",
            "dsr.rejected",
        ]
        text = str(r.json())
        assert "fixed the name" not in text and "duplicate" not in text  # reasons are sealed


async def test_list_filters_and_overdue_first(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "eu-4", "EU")
        await customer(client, "ca-4", "US-CA")
        early = await file(client, "eu-4", "access")  # due Feb 29
        clock.advance(days=40)
        late = await file(client, "ca-4", "erasure")  # due 45 days after Mar 11
        closed = await file(client, "ca-4", "opt_out_sale_share")  # completed at once
        r = await client.get("/v1/requests")
        ids = [x["id"] for x in r.json()["items"]]
        assert ids == [early["id"], late["id"], closed["id"]]
        assert r.json()["items"][0]["clocks"]["overdue"] is True
        r = await client.get("/v1/requests", params={"overdue": "true"})
        assert [x["id"] for x in r.json()["items"]] == [early["id"]]
        r = await client.get("/v1/requests", params={"type": "erasure"})
        assert [x["id"] for x in r.json()["items"]] == [late["id"]]
        r = await client.get("/v1/requests", params={"state": "completed"})
        assert [x["id"] for x in r.json()["items"]] == [closed["id"]]
        r = await client.get("/v1/requests", params={"customer": "ca-4", "open": "true"})
        assert [x["id"] for x in r.json()["items"]] == [late["id"]]
        r = await client.get("/v1/requests", params={"due_before": "2028-03-01"})
        assert [x["id"] for x in r.json()["items"]] == [early["id"]]
        # pages of one walk the same order
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/requests", params=params)).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids


async def test_customer_files_their_own_request(settings: Settings, clock: FrozenClock) -> None:
    async with frozen(settings, clock) as (_, client):
        await customer(client, "me-1", "EU")
        await customer(client, "me-2", "EU")
        token = (await client.post("/v1/customers/me-1/token", json={})).json()["token"]
        other = await file(client, "me-2", "access")
        me = {"Authorization": f"Bearer {token}"}
        r = await client.post("/v1/me/requests", json={"type": "access"}, headers=me)
        assert r.status_code == 201, r.text
        mine = r.json()
        assert mine["state"] == "verified" and mine["channel"] == "customer"
        assert mine["clocks"]["acknowledged_at"] is not None
        r = await client.post("/v1/me/requests", json={"type": "opt_out_sale_share"}, headers=me)
        assert r.status_code == 400 or r.status_code == 422
        r = await client.get("/v1/me/requests", headers=me)
        assert [x["id"] for x in r.json()["items"]] == [mine["id"]]
        r = await client.get(f"/v1/me/requests/{other['id']}", headers=me)
        assert r.status_code == 404  # not theirs
        r = await client.get("/v1/requests", headers=me)
        assert r.status_code == 403  # staff listing
