"""The audit log through the HTTP API, on both engines: one entry per change, the right action,
pseudonymous targets, no personal data in any column, and audited reads."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from consentry.audit.chain import AuditEntry, verify
from consentry.core.runtime import Core
from consentry.crypto.tokens import parse_api_key

Client = httpx.AsyncClient

EMAIL = "Zelda.Quintessa@Example.ORG"
PHONE = "+1 (415) 555-0199"
FIRST_NAME = "Zeldaquintessa"
LAST_NAME = "Vanderbrook"
EXTERNAL_ID = "crm-zq-778899"
PII = [
    EMAIL,
    EMAIL.lower(),
    "zelda.quintessa",
    PHONE,
    "+14155550199",
    "4155550199",
    "555-0199",
    FIRST_NAME,
    LAST_NAME,
    EXTERNAL_ID,
    "778899",
]


async def last_seq(core: Core) -> int:
    row = await core.db.fetchrow("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_log")
    assert row is not None
    return int(row["n"])


async def rows_since(core: Core, seq: int) -> list[dict[str, Any]]:
    return await core.db.fetch("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq", seq)


def to_entry(r: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        int(r["seq"]),
        r["at"],
        r["actor"],
        r["action"],
        r["target"],
        json.loads(r["details"]),
        r["policy_version"],
        r["prev_hash"],
        r["hash"],
    )


async def assert_chain_verifies(core: Core) -> list[AuditEntry]:
    entries = [to_entry(r) for r in await rows_since(core, 0)]
    assert entries and verify(entries) is None
    return entries


async def audited(
    core: Core,
    call: Callable[[], Awaitable[httpx.Response]],
    status: int,
    action: str,
    target: str | None = None,
) -> tuple[httpx.Response, dict[str, Any]]:
    """Run one request; it answers `status` and appends exactly one entry with `action`."""
    before = await last_seq(core)
    response = await call()
    assert response.status_code == status, response.text
    new = await rows_since(core, before)
    assert [r["action"] for r in new] == [action], (action, new)
    if target is not None:
        assert new[0]["target"] == target
    return response, new[0]


async def not_audited(
    core: Core, call: Callable[[], Awaitable[httpx.Response]], status: int
) -> httpx.Response:
    """Run one request; it answers `status` and appends nothing."""
    before = await last_seq(core)
    response = await call()
    assert response.status_code == status, response.text
    assert await rows_since(core, before) == []
    return response


def admin_actor(admin_key: str) -> str:
    parsed = parse_api_key(admin_key)
    assert parsed is not None
    return f"key:{parsed[0]}"


@dataclass(frozen=True)
class Send:
    """One request; `{key_id}`, `{confirmation}` in the path or body come from the `world`."""

    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    as_customer: bool = False  # with the customer's token instead of the admin key


@dataclass(frozen=True)
class Case:
    """A request and what it appends: one entry with `action` (or nothing when None)."""

    id: str
    send: Send
    status: int
    action: str | None
    target: str | None = "subject"  # "subject" (c-1), "new subject", "key", or None
    actor: str = "admin"  # or "customer"
    details: dict[str, Any] | None = None  # the entry's details, when the case pins them
    before: tuple[Send, ...] = ()  # requests made first, not checked
    replays_before: bool = False  # the answer is the last `before` request's answer, replayed


ANALYTICS = {"decisions": [{"purpose": "analytics", "decision": "granted"}]}
RETRY = (("Idempotency-Key", "retry-1"),)
CASES = [
    Case(
        "a new customer",
        Send(
            "PUT",
            "/v1/customers/c-2",
            {
                "region": "US-CA",
                "identities": {"email": "b@example.com"},
                "attributes": {"plan": "pro"},
            },
        ),
        201,
        "customer.created",
        target="new subject",
        details={"fields": ["identity.email", "plan"], "region": "US-CA"},
    ),
    Case(
        "a customer changed",
        Send("PUT", "/v1/customers/c-1", {"attributes": {"company": "Acme"}}),
        200,
        "customer.updated",
    ),
    Case(
        "consents, one entry for several decisions",
        Send(
            "POST",
            "/v1/customers/c-1/consents",
            {
                "decisions": [
                    {"purpose": "analytics", "decision": "granted"},
                    {"purpose": "personalization", "decision": "denied"},
                ]
            },
        ),
        201,
        "consent.recorded",
    ),
    Case(
        "consent under GPC",
        Send(
            "POST",
            "/v1/customers/c-1/consents",
            {"decisions": [{"purpose": "personalization", "decision": "denied"}]},
            headers=(("Sec-GPC", "1"),),
        ),
        201,
        "consent.recorded",
    ),
    Case(
        "preferences",
        Send(
            "PATCH",
            "/v1/customers/c-1/preferences",
            {"channels": {"sms": False}, "topics": {"newsletter": True}},
        ),
        200,
        "preferences.changed",
    ),
    Case(
        "one event",
        Send("POST", "/v1/customers/c-1/events", {"name": "login", "properties": {"n": 1}}),
        201,
        "events.ingested",
    ),
    Case(
        "a batch of events for one customer",
        Send(
            "POST",
            "/v1/events",
            {"events": [{"external_id": "c-1", "name": "a"}, {"external_id": "c-1", "name": "b"}]},
        ),
        201,
        "events.ingested",
    ),
    Case(
        "an API key created",
        Send("POST", "/v1/api-keys", {"name": "backend", "scopes": ["backend:write"]}),
        201,
        "api_key.created",
        target="new key",
    ),
    Case(
        "an API key revoked",
        Send("DELETE", "/v1/api-keys/{key_id}"),
        200,
        "api_key.revoked",
        target="key",
    ),
    Case(
        "a key revoked again changes nothing",
        Send("DELETE", "/v1/api-keys/{key_id}"),
        200,
        None,
        before=(Send("DELETE", "/v1/api-keys/{key_id}"),),
    ),
    Case(
        "a customer token issued",
        Send("POST", "/v1/customers/c-1/token", {}),
        201,
        "customer_token.issued",
    ),
    Case(
        "the customer withdraws",
        Send(
            "POST",
            "/v1/me/consents",
            {"decisions": [{"purpose": "analytics", "decision": "withdrawn"}]},
            as_customer=True,
        ),
        201,
        "consent.recorded",
        actor="customer",
    ),
    Case(
        "the customer changes preferences",
        Send("PATCH", "/v1/me/preferences", {"language": "ja"}, as_customer=True),
        200,
        "preferences.changed",
        actor="customer",
    ),
    Case(
        "a double opt-in confirmed",
        Send("POST", "/v1/confirmations", {"token": "{confirmation}"}),
        201,
        "consent.confirmed",
        actor="customer",
    ),
    Case("a customer read", Send("GET", "/v1/customers/c-1"), 200, "customer.read"),
    Case(
        "a customer found by email",
        Send("POST", "/v1/customers/search", {"email": "A@example.com"}),
        200,
        "customer.read",
        details={"reason": "lookup by email"},
    ),
    Case("events read", Send("GET", "/v1/customers/c-1/events"), 200, "events.read"),
    Case(
        "an idempotent retry",
        Send("POST", "/v1/customers/c-1/consents", ANALYTICS, headers=RETRY),
        201,
        None,
        before=(Send("POST", "/v1/customers/c-1/consents", ANALYTICS, headers=RETRY),),
        replays_before=True,
    ),
    Case(
        "an idempotency key reused for another body",
        Send("POST", "/v1/customers/c-1/consents", {"decisions": []}, headers=RETRY),
        422,
        None,
        before=(Send("POST", "/v1/customers/c-1/consents", ANALYTICS, headers=RETRY),),
    ),
    Case(
        "an unknown purpose",
        Send(
            "POST",
            "/v1/customers/c-1/consents",
            {"decisions": [{"purpose": "telepathy", "decision": "granted"}]},
        ),
        422,
        None,
    ),
    Case(
        "consents for an unknown customer",
        Send("POST", "/v1/customers/nobody/consents", ANALYTICS),
        404,
        None,
    ),
    Case("an unknown customer read", Send("GET", "/v1/customers/nobody"), 404, None),
    Case(
        "a batch of events naming an unknown customer",
        Send(
            "POST",
            "/v1/events",
            {
                "events": [
                    {"external_id": "c-1", "name": "a"},
                    {"external_id": "nobody", "name": "b"},
                ]
            },
        ),
        404,
        None,
    ),
    Case(
        "a confirmation used twice",
        Send("POST", "/v1/confirmations", {"token": "{confirmation}"}),
        410,
        None,
        before=(Send("POST", "/v1/confirmations", {"token": "{confirmation}"}),),
    ),
    Case(
        "a check reads state, no personal fields",
        Send("GET", "/v1/customers/c-1/check?purpose=analytics"),
        200,
        None,
    ),
]


@pytest.fixture
async def world(client: Client) -> dict[str, str]:
    """Customer c-1 with an email, a pending double opt-in, a customer token; a spare API key."""
    r = await client.put(
        "/v1/customers/c-1",
        json={
            "region": "US-CA",
            "identities": {"email": "a@example.com"},
            "attributes": {"plan": "pro"},
        },
    )
    assert r.status_code == 201, r.text
    pending = await client.post(
        "/v1/customers/c-1/consents",
        json={
            "decisions": [{"purpose": "marketing_email", "decision": "granted", "channel": "email"}]
        },
    )
    assert pending.status_code == 201, pending.text
    token = await client.post("/v1/customers/c-1/token", json={})
    key = await client.post("/v1/api-keys", json={"name": "spare", "scopes": ["backend:read"]})
    return {
        "sid": r.json()["id"],
        "confirmation": pending.json()["confirmations"][0]["token"],
        "token": token.json()["token"],
        "key_id": key.json()["api_key"]["id"],
    }


def _filled(value: Any, world: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**world) if "{" in value else value
    if isinstance(value, dict):
        return {k: _filled(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, world) for v in value]
    return value


async def _send(client: Client, world: dict[str, str], send: Send) -> httpx.Response:
    headers = dict(send.headers)
    if send.as_customer:
        headers["Authorization"] = f"Bearer {world['token']}"
    body = {} if send.body is None else {"json": _filled(send.body, world)}
    return await client.request(send.method, _filled(send.path, world), headers=headers, **body)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_request_appends_the_entries_it_should(
    case: Case, client: Client, core: Core, admin_key: str, world: dict[str, str]
) -> None:
    """Each change (and each audited read) appends one entry with its action, actor and
    pseudonymous target; refused, replayed and no-op requests append none; the chain verifies."""
    earlier = [await _send(client, world, step) for step in case.before]
    before = await last_seq(core)
    response = await _send(client, world, case.send)
    assert response.status_code == case.status, response.text
    if case.replays_before:
        assert response.json() == earlier[-1].json()
    new = await rows_since(core, before)
    assert [row["action"] for row in new] == ([case.action] if case.action else [])
    if case.action is not None:
        entry = new[0]
        targets = {
            "subject": f"subject:{world['sid']}",
            "new subject": f"subject:{response.json().get('id')}",
            "key": f"api_key:{world['key_id']}",
            "new key": f"api_key:{response.json().get('api_key', {}).get('id')}",
        }
        assert entry["target"] == (targets[case.target] if case.target else None)
        actors = {"admin": admin_actor(admin_key), "customer": f"customer:{world['sid']}"}
        assert entry["actor"] == actors[case.actor]
        if case.details is not None:
            assert json.loads(entry["details"]).items() >= case.details.items()
    entries = await assert_chain_verifies(core)
    assert all(e.policy_version == core.policy.version for e in entries)


async def test_the_log_starts_with_the_bootstrap_key(core: Core, admin_key: str) -> None:
    """The first entry of a new service is the bootstrap admin key's creation."""
    entries = await assert_chain_verifies(core)
    assert entries[0].action == "api_key.created"


async def test_a_double_opt_in_grant_is_recorded_as_pending(client: Client, core: Core) -> None:
    """A grant of a double opt-in purpose is audited as pending, beside the other decisions."""
    await client.put("/v1/customers/c-1", json={"region": "US-CA"})
    before = await last_seq(core)
    r = await client.post(
        "/v1/customers/c-1/consents",
        json={
            "decisions": [
                {"purpose": "analytics", "decision": "granted"},
                {"purpose": "marketing_email", "decision": "granted", "channel": "email"},
            ]
        },
    )
    assert r.status_code == 201, r.text
    [entry] = await rows_since(core, before)
    decisions = json.loads(entry["details"])["decisions"]
    assert [(d["purpose"], d["decision"]) for d in decisions] == [
        ("analytics", "granted"),
        ("marketing_email", "pending"),
    ]


async def test_gpc_is_applied_to_a_consent_request(client: Client) -> None:
    """A request with Sec-GPC: 1 says GPC was applied."""
    await client.put("/v1/customers/c-1", json={"region": "US-CA"})
    r = await client.post(
        "/v1/customers/c-1/consents",
        headers={"Sec-GPC": "1"},
        json={"decisions": [{"purpose": "personalization", "decision": "denied"}]},
    )
    assert r.status_code == 201 and r.json()["gpc"] == "applied", r.text


async def test_a_batch_of_events_for_several_customers_is_audited_per_customer(
    client: Client, core: Core
) -> None:
    """One events batch touching two customers appends one entry per customer (so a customer's
    slice of the log is complete), all in the request's transaction."""
    ids = {}
    for ext in ("b-1", "b-2"):
        r = await client.put(f"/v1/customers/{ext}", json={"region": "EU"})
        ids[ext] = r.json()["id"]
    before = await last_seq(core)
    r = await client.post(
        "/v1/events",
        json={
            "events": [
                {"external_id": "b-1", "name": "x"},
                {"external_id": "b-2", "name": "y"},
                {"external_id": "b-1", "name": "z"},
            ]
        },
    )
    assert r.status_code == 201, r.text
    new = await rows_since(core, before)
    assert sorted(
        (row["action"], row["target"], json.loads(row["details"])["count"]) for row in new
    ) == sorted(
        [
            ("events.ingested", f"subject:{ids['b-1']}", 2),
            ("events.ingested", f"subject:{ids['b-2']}", 1),
        ]
    )
    assert len({row["at"] for row in new}) == 1  # one transaction, one time


async def test_audit_rows_hold_no_personal_data(client: Client, core: Core) -> None:
    """After creating, changing, reading, searching and consenting for a customer, no column of
    any audit row contains their email, phone, name or external id."""
    r = await client.put(
        f"/v1/customers/{EXTERNAL_ID}",
        json={
            "region": "EU",
            "identities": {"email": EMAIL, "phone": PHONE},
            "attributes": {"first_name": FIRST_NAME, "last_name": LAST_NAME, "plan": "pro"},
        },
    )
    assert r.status_code == 201, r.text
    calls = [
        client.put(
            f"/v1/customers/{EXTERNAL_ID}",
            json={"identities": {"phone": PHONE}, "attributes": {"first_name": FIRST_NAME}},
        ),
        client.get(f"/v1/customers/{EXTERNAL_ID}"),
        client.get(f"/v1/customers/{EXTERNAL_ID}", params={"reason": "support ticket 12"}),
        client.post("/v1/customers/search", json={"email": EMAIL}),
        client.post("/v1/customers/search", json={"phone": PHONE}),
        client.post(
            f"/v1/customers/{EXTERNAL_ID}/consents",
            json={
                "decisions": [
                    {"purpose": "marketing_email", "decision": "granted"},
                    {"purpose": "analytics", "decision": "granted"},
                ],
                "evidence": {
                    "ip": "203.0.113.9",
                    "user_agent": "Mozilla/5.0",
                    "url": f"https://shop.example/signup?email={EMAIL}",
                },
            },
        ),
        client.patch(f"/v1/customers/{EXTERNAL_ID}/preferences", json={"channels": {"sms": False}}),
        client.post(
            f"/v1/customers/{EXTERNAL_ID}/events",
            json={"name": "signup", "properties": {"email": EMAIL, "first_name": FIRST_NAME}},
        ),
        client.get(f"/v1/customers/{EXTERNAL_ID}/events"),
        client.post(f"/v1/customers/{EXTERNAL_ID}/token", json={}),
    ]
    for call in calls:
        response = await call
        assert response.status_code < 300, response.text
    rows = await core.db.fetch("SELECT * FROM audit_log ORDER BY seq")
    assert len(rows) >= 1 + 1 + len(calls)  # bootstrap key, create, each call
    actions = {row["action"] for row in rows}
    assert {
        "customer.created",
        "customer.updated",
        "customer.read",
        "consent.recorded",
        "preferences.changed",
        "events.ingested",
        "events.read",
        "customer_token.issued",
    } <= actions
    for row in rows:
        for column, value in row.items():
            text = str(value).lower()
            for needle in PII:
                assert needle.lower() not in text, (row["seq"], column, needle)
    # field names are fine (and expected): the read says which fields were seen
    reads = [json.loads(r["details"]) for r in rows if r["action"] == "customer.read"]
    assert all("first_name" in d["fields"] and "identity.email" in d["fields"] for d in reads)
    await assert_chain_verifies(core)


async def test_customer_read_is_audited(client: Client, core: Core, admin_key: str) -> None:
    """GET /v1/customers/{id} appends a customer.read entry naming the reader, the pseudonymous
    subject, the fields seen and the reason given (sealed with the customer's key)."""
    r = await client.put(
        "/v1/customers/r-1",
        json={
            "region": "JP",
            "identities": {"email": "r1@example.com"},
            "attributes": {"first_name": "Rin", "plan": "free"},
        },
    )
    sid = r.json()["id"]
    r, e = await audited(
        core,
        lambda: client.get("/v1/customers/r-1", params={"reason": "ticket 42"}),
        200,
        "customer.read",
        f"subject:{sid}",
    )
    assert r.json()["identities"] == {"email": "r1@example.com"}
    assert e["actor"] == admin_actor(admin_key)
    details = json.loads(e["details"])
    assert details["fields"] == ["first_name", "identity.email", "plan"]
    assert set(details) == {"fields", "reason_sealed"} and "ticket" not in e["details"]
    # each read is its own entry
    for _ in range(3):
        await audited(
            core, lambda: client.get("/v1/customers/r-1"), 200, "customer.read", f"subject:{sid}"
        )
    await assert_chain_verifies(core)
