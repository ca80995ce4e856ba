"""The audit log through the HTTP API, on both engines: one entry per change, the right action,
pseudonymous targets, no personal data in any column, and audited reads."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

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


async def test_every_change_appends_exactly_one_entry(
    client: Client, core: Core, admin_key: str
) -> None:
    """Each write request (and each audited read) appends one entry with its action, naming the
    subject by pseudonym; refused or replayed requests append none; the chain verifies."""
    admin = admin_actor(admin_key)

    r, e = await audited(
        core,
        lambda: client.put(
            "/v1/customers/c-1",
            json={
                "region": "US-CA",
                "identities": {"email": "a@example.com"},
                "attributes": {"plan": "pro"},
            },
        ),
        201,
        "customer.created",
    )
    sid = r.json()["id"]
    subject = f"subject:{sid}"
    assert e["target"] == subject and e["actor"] == admin
    assert json.loads(e["details"]) == {"fields": ["identity.email", "plan"], "region": "US-CA"}

    await audited(
        core,
        lambda: client.put("/v1/customers/c-1", json={"attributes": {"company": "Acme"}}),
        200,
        "customer.updated",
        subject,
    )

    _, e = await audited(
        core,
        lambda: client.post(
            "/v1/customers/c-1/consents",
            json={
                "decisions": [
                    {"purpose": "analytics", "decision": "granted"},
                    {"purpose": "marketing_email", "decision": "granted", "channel": "email"},
                ]
            },
        ),
        201,
        "consent.recorded",
        subject,
    )
    details = json.loads(e["details"])
    assert [(d["purpose"], d["decision"]) for d in details["decisions"]] == [
        ("analytics", "granted"),
        ("marketing_email", "pending"),
    ]

    r, _ = await audited(
        core,
        lambda: client.post(
            "/v1/customers/c-1/consents",
            headers={"Sec-GPC": "1"},
            json={"decisions": [{"purpose": "personalization", "decision": "denied"}]},
        ),
        201,
        "consent.recorded",
        subject,
    )
    assert r.json()["gpc"] == "applied"

    await audited(
        core,
        lambda: client.patch(
            "/v1/customers/c-1/preferences",
            json={"channels": {"sms": False}, "topics": {"newsletter": True}},
        ),
        200,
        "preferences.changed",
        subject,
    )

    await audited(
        core,
        lambda: client.post(
            "/v1/customers/c-1/events", json={"name": "login", "properties": {"n": 1}}
        ),
        201,
        "events.ingested",
        subject,
    )

    await audited(
        core,
        lambda: client.post(
            "/v1/events",
            json={
                "events": [{"external_id": "c-1", "name": "a"}, {"external_id": "c-1", "name": "b"}]
            },
        ),
        201,
        "events.ingested",
        subject,
    )

    r, e = await audited(
        core,
        lambda: client.post("/v1/api-keys", json={"name": "backend", "scopes": ["backend:write"]}),
        201,
        "api_key.created",
    )
    key_id = r.json()["api_key"]["id"]
    assert e["target"] == f"api_key:{key_id}" and e["actor"] == admin

    await audited(
        core,
        lambda: client.delete(f"/v1/api-keys/{key_id}"),
        200,
        "api_key.revoked",
        f"api_key:{key_id}",
    )
    # revoking again changes nothing, so records nothing
    await not_audited(core, lambda: client.delete(f"/v1/api-keys/{key_id}"), 200)

    r, _ = await audited(
        core,
        lambda: client.post("/v1/customers/c-1/token", json={}),
        201,
        "customer_token.issued",
        subject,
    )
    token = r.json()["token"]
    me = {"Authorization": f"Bearer {token}"}

    _, e = await audited(
        core,
        lambda: client.post(
            "/v1/me/consents",
            headers=me,
            json={"decisions": [{"purpose": "analytics", "decision": "withdrawn"}]},
        ),
        201,
        "consent.recorded",
        subject,
    )
    assert e["actor"] == f"customer:{sid}"

    await audited(
        core,
        lambda: client.patch("/v1/me/preferences", headers=me, json={"language": "ja"}),
        200,
        "preferences.changed",
        subject,
    )

    # the pending marketing email grant from above, confirmed with its token
    rec = await client.post(
        "/v1/customers/c-1/consents",
        json={"decisions": [{"purpose": "marketing_email", "decision": "granted"}]},
    )
    confirmation = rec.json()["confirmations"][0]["token"]
    _, e = await audited(
        core,
        lambda: client.post("/v1/confirmations", json={"token": confirmation}),
        201,
        "consent.confirmed",
        subject,
    )
    assert e["actor"] == f"customer:{sid}"

    # audited reads
    await audited(core, lambda: client.get("/v1/customers/c-1"), 200, "customer.read", subject)
    _, e = await audited(
        core,
        lambda: client.post("/v1/customers/search", json={"email": "A@example.com"}),
        200,
        "customer.read",
        subject,
    )
    assert json.loads(e["details"])["reason"] == "lookup by email"
    await audited(core, lambda: client.get("/v1/customers/c-1/events"), 200, "events.read", subject)

    # an idempotent retry records nothing new
    body = {"decisions": [{"purpose": "personalization", "decision": "granted"}]}
    headers = {"Idempotency-Key": "retry-1"}
    first, _ = await audited(
        core,
        lambda: client.post("/v1/customers/c-1/consents", json=body, headers=headers),
        201,
        "consent.recorded",
    )
    again = await not_audited(
        core, lambda: client.post("/v1/customers/c-1/consents", json=body, headers=headers), 201
    )
    assert again.json() == first.json()
    await not_audited(
        core,
        lambda: client.post("/v1/customers/c-1/consents", json={"decisions": []}, headers=headers),
        422,
    )

    # refused requests record nothing
    await not_audited(
        core,
        lambda: client.post(
            "/v1/customers/c-1/consents",
            json={"decisions": [{"purpose": "telepathy", "decision": "granted"}]},
        ),
        422,
    )
    await not_audited(
        core,
        lambda: client.post(
            "/v1/customers/nobody/consents",
            json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
        ),
        404,
    )
    await not_audited(core, lambda: client.get("/v1/customers/nobody"), 404)
    await not_audited(
        core,
        lambda: client.post(
            "/v1/events",
            json={
                "events": [
                    {"external_id": "c-1", "name": "a"},
                    {"external_id": "nobody", "name": "b"},
                ]
            },
        ),
        404,
    )
    await not_audited(
        core, lambda: client.post("/v1/confirmations", json={"token": confirmation}), 410
    )

    # plain reads of state are not audited entries (nothing changed, no personal fields)
    await not_audited(
        core, lambda: client.get("/v1/customers/c-1/check", params={"purpose": "analytics"}), 200
    )

    entries = await assert_chain_verifies(core)
    assert entries[0].action == "api_key.created"  # the bootstrap key
    assert all(e.policy_version == core.policy.version for e in entries)


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
