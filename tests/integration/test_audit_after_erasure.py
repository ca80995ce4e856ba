"""Erasure leaves the audit chain verifiable: entries hold no personal data, so nothing in them
needs rewriting. A customer with distinctive personal data goes through every audited path, is
then erased through the data-subject request flow, and the exported log still verifies offline
with no trace of that data in it."""

from __future__ import annotations

import httpx

from consentry.audit.verify import verify_export
from consentry.core.runtime import Core
from consentry.crypto.signing import KeyRing

EMAIL = "Wilhelmina.Quarterfield@Example.NET"
PHONE = "+44 20 7946 0958"
FIRST_NAME = "Wilhelmina"
LAST_NAME = "Quarterfield"
EXTERNAL_ID = "crm-wq-551177"
# (no short digit runs: hex hashes would contain them by chance)
PII = [
    EMAIL,
    "quarterfield",
    PHONE,
    "+442079460958",
    "2079460958",
    FIRST_NAME,
    LAST_NAME,
    EXTERNAL_ID,
    "crm-wq",
]


def assert_no_pii(blob: bytes, where: str) -> None:
    lowered = blob.lower()
    for needle in PII:
        assert needle.lower().encode() not in lowered, f"{needle!r} found in {where}"


async def test_erased_customer_leaves_a_verifiable_log_without_personal_data(
    client: httpx.AsyncClient, core: Core
) -> None:
    r = await client.put(
        f"/v1/customers/{EXTERNAL_ID}",
        json={
            "region": "EU",
            "identities": {"email": EMAIL, "phone": PHONE},
            "attributes": {"first_name": FIRST_NAME, "last_name": LAST_NAME, "plan": "pro"},
        },
    )
    assert r.status_code == 201, r.text
    subject_id = r.json()["id"]
    base = f"/v1/customers/{EXTERNAL_ID}"
    calls = [
        client.post(
            f"{base}/consents",
            json={
                "decisions": [
                    {"purpose": "analytics", "decision": "granted"},
                    {"purpose": "marketing_email", "decision": "granted", "channel": "email"},
                ]
            },
        ),
        client.patch(f"{base}/preferences", json={"channels": {"sms": False}}),
        client.post(f"{base}/events", json={"name": "signed_up", "properties": {"n": 1}}),
        client.get(base, params={"reason": "support ticket"}),
        client.post("/v1/customers/search", json={"email": EMAIL}),
        client.get(f"{base}/events"),
        client.get(f"{base}/consents/history"),
        client.get(f"{base}/consent-proof"),
    ]
    for call in calls:
        r = await call
        assert r.status_code < 300, r.text
    keys = KeyRing.load((await client.get("/.well-known/jwks.json")).content)

    before = (await client.get("/v1/audit/export")).content
    assert verify_export(before.splitlines(), keys).status == "verified"
    slice_before = (await client.get("/v1/audit/export", params={"subject": subject_id})).content
    assert slice_before.count(b"\n") >= len(calls)  # the customer's entries are all there

    # the erasure itself, through the data-subject request flow
    r = await client.post(
        "/v1/requests",
        json={"external_id": EXTERNAL_ID, "type": "erasure", "verified_by": "signed-in"},
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/requests/{r.json()['id']}/fulfil")
    assert r.status_code == 200 and r.json()["state"] == "completed", r.text
    assert await core.keys.get(subject_id) is None

    full = (await client.get("/v1/audit/export")).content
    report = verify_export(full.splitlines(), keys)
    assert report.status == "verified", report.summary()
    assert report.entries > len(calls)
    sliced = (await client.get("/v1/audit/export", params={"subject": subject_id})).content
    report = verify_export(sliced.splitlines(), keys)
    assert report.status == "verified" and report.entries >= len(calls), report.summary()
    csv_export = (await client.get("/v1/audit/export.csv")).content
    for blob, where in [
        (full, "JSONL export"),
        (sliced, "slice"),
        (csv_export, "CSV export"),
        (before, "export before erasure"),
    ]:
        assert_no_pii(blob, where)
    rows = await core.db.fetch("SELECT * FROM audit_log")
    assert_no_pii(repr(rows).encode(), "audit_log rows")
