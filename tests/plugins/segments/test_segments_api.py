"""The segments plugin over HTTP, on both engines: definitions, counts, members, consent,
audit, scopes and problem+json errors."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from consentry.clock import FrozenClock
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.customers.records import resolve
from consentry.domain.consent import Decision, Source
from consentry.ledger import consents
from consentry.ledger.consents import DecisionIn, RecordRequest

Client = httpx.AsyncClient
BASE = "/v1/plugins/segments"
SYSTEM = Principal("system", "test")

PRO_ACTIVE = {
    "and": [
        {"attr": "plan", "op": "=", "value": "pro"},
        {"attr": "upgraded_at", "op": "within_days", "value": 30},
        {"attr": "seats", "op": ">", "value": 5},
        {
            "events": {
                "name": "feature_used",
                "where": [{"prop": "feature", "op": "=", "value": "reports"}],
                "last_days": 30,
            },
            "op": ">=",
            "value": 3,
        },
    ]
}


def ago(clock: FrozenClock, days: float) -> str:
    return (clock.now - timedelta(days=days)).isoformat().replace("+00:00", "Z")


async def customer(client: Client, external_id: str, region: str, **attributes: Any) -> None:
    r = await client.put(
        f"/v1/customers/{external_id}", json={"region": region, "attributes": attributes}
    )
    assert r.status_code in (200, 201), r.text


async def grant(core: Core, external_id: str, purpose: str = "marketing_email") -> None:
    """A confirmed double opt-in (what the confirmation link records)."""
    subject_id, region = await resolve(core, external_id)
    request = RecordRequest([DecisionIn(purpose, Decision.GRANTED)], source=Source.DOUBLE_OPT_IN)
    await consents.record_for(core, subject_id, region, request, SYSTEM)


async def uses(client: Client, external_id: str, feature: str, days_ago: list[float]) -> None:
    clock_events = [
        {
            "external_id": external_id,
            "name": "feature_used",
            "occurred_at": when,
            "properties": {"feature": feature},
        }
        for when in [d for d in days_ago]
    ]
    r = await client.post("/v1/events", json={"events": clock_events})
    assert r.status_code == 201, r.text


async def seed(client: Client, core: Core, clock: FrozenClock) -> dict[str, str]:
    """Five customers; only `a` matches the filter and has consent (b matches without it)."""
    await customer(client, "a", "EU", plan="pro", upgraded_at=ago(clock, 3), seats=10)
    await customer(client, "b", "EU", plan="pro", upgraded_at=ago(clock, 3), seats=10)
    await customer(client, "c", "EU", plan="free", upgraded_at=ago(clock, 3), seats=10)
    await customer(client, "d", "EU", plan="pro", upgraded_at=ago(clock, 45), seats=10)
    await customer(client, "e", "EU", plan="pro", upgraded_at=ago(clock, 3), seats="10")
    for name in "abcde":
        await uses(client, name, "reports", [ago(clock, 1), ago(clock, 2), ago(clock, 3)])
    await uses(client, "a", "billing", [ago(clock, 1)])
    for name in "acde":
        await grant(core, name)
    ids = {}
    for name in "abcde":
        ids[name] = str((await resolve(core, name))[0])
    return ids


async def create(client: Client, flt: dict[str, Any], name: str = "pro") -> dict[str, Any]:
    r = await client.post(
        BASE + "/", json={"name": name, "purpose": "marketing_email", "filter": flt}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_segment_lifecycle_and_members(
    seg_client: Client, seg_core: Core, clock: FrozenClock
) -> None:
    """Create, get, list, count, members, preview, delete: only consented matches are members."""
    ids = await seed(seg_client, seg_core, clock)
    segment = await create(seg_client, PRO_ACTIVE)
    sid = segment["id"]
    assert segment["filter"] == PRO_ACTIVE and segment["purpose"] == "marketing_email"

    r = await seg_client.get(f"{BASE}/{sid}")
    assert r.status_code == 200 and r.json()["name"] == "pro"
    r = await seg_client.get(BASE + "/")
    assert [s["id"] for s in r.json()["items"]] == [sid]

    r = await seg_client.get(f"{BASE}/{sid}/count")
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 1
    r = await seg_client.get(f"{BASE}/{sid}/members")
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [ids["a"]]

    r = await seg_client.post(
        BASE + "/preview",
        json={"purpose": "marketing_email", "filter": {"attr": "plan", "op": "=", "value": "pro"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 3  # a, d, e: b has no consent, c is on free

    r = await seg_client.delete(f"{BASE}/{sid}")
    assert r.status_code == 204, r.text
    assert (await seg_client.get(f"{BASE}/{sid}")).status_code == 404
    assert (await seg_client.delete(f"{BASE}/{sid}")).status_code == 404


async def test_time_moves_members_out(
    seg_client: Client, seg_core: Core, clock: FrozenClock
) -> None:
    """Windows are evaluated at read time: 30 days later nobody upgraded 'within 30 days'."""
    await seed(seg_client, seg_core, clock)
    segment = await create(seg_client, PRO_ACTIVE)
    clock.advance(days=31)
    r = await seg_client.get(f"{BASE}/{segment['id']}/count")
    assert r.json()["count"] == 0


async def test_withdrawal_removes_member_on_next_read(
    seg_client: Client, seg_core: Core, clock: FrozenClock
) -> None:
    """Membership is evaluated at query time: a withdrawal over the API takes effect at once."""
    ids = await seed(seg_client, seg_core, clock)
    segment = await create(seg_client, {"attr": "plan", "op": "=", "value": "pro"})
    members = (await seg_client.get(f"{BASE}/{segment['id']}/members")).json()["items"]
    assert ids["a"] in members
    r = await seg_client.post(
        "/v1/customers/a/consents",
        json={"decisions": [{"purpose": "marketing_email", "decision": "withdrawn"}]},
    )
    assert r.status_code == 201, r.text
    members = (await seg_client.get(f"{BASE}/{segment['id']}/members")).json()["items"]
    assert ids["a"] not in members
    assert sorted(members) == sorted([ids["d"], ids["e"]])


async def test_members_pagination_and_audit(
    seg_client: Client, seg_core: Core, clock: FrozenClock
) -> None:
    """Pages in id order; each page read is one audit entry naming the pseudonymous ids."""
    ids = await seed(seg_client, seg_core, clock)
    segment = await create(seg_client, {"and": []})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await seg_client.get(f"{BASE}/{segment['id']}/members", params=params)
        assert r.status_code == 200, r.text
        seen += r.json()["items"]
        pages += 1
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids[n] for n in "acde")
    assert pages == 2
    rows = await seg_core.db.fetch(
        "SELECT actor, details FROM audit_log WHERE action = 'plugin.query' ORDER BY seq"
    )
    reads = [json.loads(r["details"]) for r in rows if r["actor"] == "plugin:segments"]
    pages_read = [
        d
        for d in reads
        if d["kind"] == "members" and d["requested_by"].endswith(f"segment:{segment['id']}")
    ]
    assert len(pages_read) == 2  # one audit entry per page, by the gate, naming who asked
    assert [s for d in pages_read for s in d["subjects"]] == seen
    created = await seg_core.db.fetch(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'segments.created'"
    )
    assert created[0]["n"] == 1


async def test_validation_errors_are_problems(seg_client: Client) -> None:
    """Invalid filters answer 422 problem+json naming the offending part."""
    r = await seg_client.post(
        BASE + "/preview",
        json={
            "purpose": "marketing_email",
            "filter": {
                "and": [
                    {"attr": "plan", "op": "=", "value": "pro"},
                    {"attr": "monthly_spend", "op": ">", "value": 50},
                ]
            },
        },
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["field"] == "filter.and[1].attr"
    assert "attribute 'monthly_spend' is sensitive (financial)" in body["detail"]
    assert "blind index" in body["detail"]

    r = await seg_client.post(
        BASE + "/", json={"name": "x", "purpose": "analytics", "filter": {"and": []}}
    )
    assert r.status_code == 422 and r.json()["field"] == "purpose"
    assert "segments.membership to marketing_email" in r.json()["detail"]

    r = await seg_client.post(
        BASE + "/preview",
        json={
            "purpose": "marketing_email",
            "filter": {"or": [{"attr": "plan", "op": "<", "value": True}]},
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "filter.or[0].value"


async def test_scopes(seg_client: Client, seg_core: Core) -> None:
    """backend:read may count and list members but not create; no key: 401."""
    r = await seg_client.post("/v1/api-keys/", json={"name": "reader", "scopes": ["backend:read"]})
    assert r.status_code == 201, r.text
    reader = {"Authorization": f"Bearer {r.json()['key']}"}
    flt = {"purpose": "marketing_email", "filter": {"and": []}}
    r = await seg_client.post(BASE + "/", json={"name": "n", **flt}, headers=reader)
    assert r.status_code == 403
    r = await seg_client.post(BASE + "/preview", json=flt, headers=reader)
    assert r.status_code == 200
    r = await seg_client.post(BASE + "/preview", json=flt, headers={"Authorization": ""})
    assert r.status_code == 401


async def test_types_and_times_agree_on_both_engines(seg_client: Client, seg_core: Core) -> None:
    """Comparisons are typed and times are parsed the same way on both engines; values that are
    not times (or not real dates) match no time condition. US is opt-out: no consent needed."""
    values: dict[str, Any] = {
        "t1": "2026-02-10T00:00:00Z",
        "t2": "2026-02-10T08:00:00+09:00",  # 2026-02-09T23:00Z
        "t3": "2026-02-10",
        "t4": "2026-02-30",  # not a date
        "t5": "yesterday",
        "t6": 20260210,
        "t7": "2026-02-10 00:00:00.5",
    }
    for name, value in values.items():
        await customer(seg_client, name, "US", upgraded_at=value, seats=value)

    async def matching(flt: dict[str, Any]) -> set[str]:
        segment = await create(seg_client, flt, name="t")
        r = await seg_client.get(f"{BASE}/{segment['id']}/members", params={"limit": 500})
        assert r.status_code == 200, r.text
        found = set(r.json()["items"])
        names = set()
        for name in values:
            if str((await resolve(seg_core, name))[0]) in found:
                names.add(name)
        return names

    after = {"attr": "upgraded_at", "op": "after", "value": "2026-02-09T23:30:00Z"}
    assert await matching(after) == {"t1", "t3", "t7"}
    before = {"attr": "upgraded_at", "op": "before", "value": "2026-02-10T00:00:00Z"}
    assert await matching(before) == {"t2"}
    assert await matching({"not": before}) == set(values) - {"t2"}
    assert await matching({"attr": "seats", "op": ">", "value": 1}) == {"t6"}
    assert await matching({"attr": "seats", "op": "in", "value": ["2026-02-10", 1]}) == {"t3"}
    assert await matching({"attr": "seats", "op": "<", "value": "2026-02-10T"}) == {"t3", "t7"}
