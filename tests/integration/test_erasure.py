"""Erasure reaches everywhere: the live store, a copy of the store taken before the erasure (a
backup), the logs, the exports. The copy is read with the live key store, as an attacker holding
a backup and the running service's keys would; a bystander's data in the same copy stays
readable, which shows the check can find what is there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from consentry.audit.verify import verify_export
from consentry.core.runtime import Core
from consentry.crypto.envelope import DecryptionError, decrypt, decrypt_json
from consentry.crypto.signing import KeyRing, jws_verify
from consentry.settings import Settings
from consentry.storage.keystore import split_search_path

EMAIL = "Ottoline.Brackenbury@Example.ORG"
PHONE = "+44 20 7946 0321"
FIRST, LAST = "Ottoline", "Brackenbury"
SPEND = 98765.4321  # financial: sensitive
SENSITIVE = [EMAIL, "brackenbury", "+442079460321", FIRST, LAST, "98765.4321"]
EXT = "crm-ob-4417"

Tables = dict[str, list[dict[str, Any]]]


async def copy_store(settings: Settings, tmp_path: Path) -> Tables:
    """Every row of every table of the data store, as a backup would hold it."""
    url = settings.database_url
    if url.startswith("sqlite"):
        tmp_path.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(url.removeprefix("sqlite:///"))
        backup = sqlite3.connect(tmp_path / "backup.sqlite")
        source.backup(backup)
        source.close()
        backup.row_factory = sqlite3.Row
        names = [
            r[0] for r in backup.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        tables = {n: [dict(r) for r in backup.execute(f"SELECT * FROM {n}")] for n in names}
        backup.close()
        return tables
    dsn, schema = split_search_path(url)
    conn = await asyncpg.connect(dsn)
    try:
        names = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                schema,
            )
        ]
        return {
            n: [dict(r) for r in await conn.fetch(f'SELECT * FROM "{schema}"."{n}"')] for n in names
        }
    finally:
        await conn.close()


def raw_files(path: Path) -> bytes:
    """A SQLite database's bytes on disk, with its write-ahead log."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def clear_text(tables: Tables) -> bytes:
    return repr(tables).lower().encode()


def assert_nothing_sensitive(blob: bytes, where: str) -> None:
    lowered = blob.lower()
    for needle in SENSITIVE:
        assert needle.lower().encode() not in lowered, f"{needle!r} in clear in {where}"


async def readable(core: Core, tables: Tables, subject_id: str) -> list[str]:
    """What of this customer's sealed data the live key store opens, in these rows."""
    key = await core.keys.get(subject_id)
    if key is None:
        return []
    found = []
    for row in tables["subjects"]:
        if str(row["id"]) == subject_id:
            found.append(
                json.dumps(
                    decrypt_json(
                        key, bytes(row["identities_enc"]), aad=f"subject:{subject_id}:identities"
                    )
                )
            )
            found.append(
                json.dumps(
                    decrypt_json(
                        key, bytes(row["attributes_enc"]), aad=f"subject:{subject_id}:attributes"
                    )
                )
            )
    for row in tables["idempotency_keys"]:
        if str(row["subject_id"]) == subject_id:
            found.append(decrypt(key, bytes(row["body"]), aad=f"idempotency:{row['key']}").decode())
    for row in tables["dsr_exports"]:
        if str(row["subject_id"]) == subject_id:
            bundle = decrypt(key, bytes(row["bundle_enc"]), aad=f"dsr:{row['request_id']}:export")
            found.append(f"bundle of {len(bundle)} bytes")
    return found


async def make_customer(client: httpx.AsyncClient, ext: str, email: str, first: str) -> str:
    r = await client.put(
        f"/v1/customers/{ext}",
        headers={"Idempotency-Key": f"create-{ext}"},  # the stored answer holds identities
        json={
            "region": "EU",
            "identities": {"email": email, "phone": PHONE if ext == EXT else "+15555550100"},
            "attributes": {
                "first_name": first,
                "last_name": LAST if ext == EXT else "Smith",
                "monthly_spend": SPEND if ext == EXT else 10,
                "plan": "pro",
            },
        },
    )
    assert r.status_code == 201, r.text
    base = f"/v1/customers/{ext}"
    for call in (
        client.post(
            f"{base}/consents",
            json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
        ),
        client.patch(f"{base}/preferences", json={"channels": {"sms": False}}),
        client.post(f"{base}/events", json={"name": "signed_up", "properties": {"n": 1}}),
        client.get(base, params={"reason": "support"}),
    ):
        assert (await call).status_code < 300
    subject: str = r.json()["id"]
    return subject


async def request(client: httpx.AsyncClient, ext: str, kind: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/requests",
        json={"external_id": ext, "type": kind, "verified_by": "signed-in account"},
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/requests/{r.json()['id']}/fulfil", json={})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_erasure_leaves_nothing_readable_anywhere(
    client: httpx.AsyncClient,
    core: Core,
    settings: Settings,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    subject = await make_customer(client, EXT, EMAIL, FIRST)
    bystander = await make_customer(client, "crm-by-1", "someone@example.com", "Bystander")
    access = await request(client, EXT, "access")  # an export bundle exists before the erasure
    link = (await client.post(f"/v1/requests/{access['id']}/download-link")).json()["url"]
    assert (await client.get(link)).status_code == 200

    backup = await copy_store(settings, tmp_path)
    # the check is honest: before the erasure, the copy opens with the live keys
    opened = " ".join(await readable(core, backup, subject))
    assert EMAIL.lower() in opened.lower() and FIRST in opened and "bundle of" in opened
    assert_nothing_sensitive(clear_text(backup), "the copy, in clear, even before erasure")

    key_file = getattr(core.keys, "path", None)  # SQLite key store: a file we can read raw
    wrapped = None
    if key_file is not None:
        with sqlite3.connect(key_file) as keys:
            [(wrapped,)] = keys.execute(
                "SELECT wrapped FROM subject_keys WHERE subject_id = ?", (subject,)
            ).fetchall()
        assert bytes(wrapped) in raw_files(key_file)  # the raw check can see it

    erased = await request(client, EXT, "erasure")
    assert erased["state"] == "completed"
    summary = erased["result"]["erasure"]["erased"]
    assert summary["identities"] == ["email", "phone"]
    assert summary["attributes"]["financial"] == ["monthly_spend"]
    assert summary["rows"]["events"] == 1 and summary["rows"]["stored_answers"] >= 1

    # the pre-erasure copy, read with the live key store: nothing of the customer opens
    assert await readable(core, backup, subject) == []
    with pytest.raises(DecryptionError):  # nor under another customer's key
        other = await core.keys.get(bystander)
        assert other is not None
        [row] = [r for r in backup["subjects"] if str(r["id"]) == subject]
        decrypt(other, bytes(row["identities_enc"]), aad=f"subject:{subject}:identities")
    assert "someone@example.com" in " ".join(await readable(core, backup, bystander))

    # the live store: the customer's rows are gone, only the tombstone and the ledger remain
    live = await copy_store(settings, tmp_path / "after")
    assert_nothing_sensitive(clear_text(live), "the live store")
    assert not [r for r in live["subjects"] if str(r["id"]) == subject]
    for table in ("events", "consent_state", "preference_state", "idempotency_keys", "dsr_exports"):
        assert not [r for r in live[table] if str(r.get("subject_id")) == subject], table
    assert [r for r in live["consent_records"] if str(r["subject_id"]) == subject]  # policy
    assert await core.keys.get(subject) is None
    if key_file is not None:  # gone from the key store's file and its log, not just unlinked
        assert bytes(wrapped) not in raw_files(key_file)

    # exports: the audit log verifies and holds nothing; the customer's export is gone
    keys = KeyRing.load((await client.get("/.well-known/jwks.json")).content)
    log = (await client.get("/v1/audit/export")).content
    report = verify_export(log.splitlines(), keys)
    assert report.status == "verified", report.summary()
    assert_nothing_sensitive(log, "the audit export")
    assert_nothing_sensitive((await client.get("/v1/audit/export.csv")).content, "CSV export")
    assert EXT.encode() not in log
    assert (await client.get(link)).status_code in (404, 410)
    r = await client.get(f"/v1/requests/{access['id']}/export")
    assert r.status_code == 404 and "erased" in r.json()["detail"]

    # the logs of the whole run
    out, err = capfd.readouterr()
    assert_nothing_sensitive((out + err).encode(), "the logs")

    # clear errors after the erasure
    r = await client.get(f"/v1/customers/{EXT}")
    assert r.status_code == 410 and "was erased on" in r.json()["detail"]
    r = await client.post("/v1/requests", json={"external_id": EXT, "type": "access"})
    assert r.status_code == 410
    r = await client.post(f"/v1/requests/{erased['id']}/fulfil", json={})
    assert r.status_code == 409

    # the certificate verifies with the published key and names the request, not the person
    cert = (await client.get(f"/v1/requests/{erased['id']}/certificate")).json()
    _, claims = jws_verify(cert["jws"], keys)
    assert claims["request_id"] == erased["id"] and claims["erased"]["rows"]["events"] == 1
    assert "data key" in claims["erased"]["data_key"] or claims["erased"]["data_key"]
    assert EXT not in cert["jws"] and EMAIL not in json.dumps(claims)

    # the same external id again: recognised and flagged, and a new, separate customer
    r = await client.put(f"/v1/customers/{EXT}", json={"region": "EU"})
    assert r.status_code == 201
    assert r.json()["previously_erased_at"] is not None
    assert UUID(r.json()["id"]) != UUID(subject)
    again = await request(client, EXT, "erasure")  # the new customer can be erased in turn
    assert again["state"] == "completed"
    assert (await client.get(f"/v1/customers/{EXT}")).status_code == 410


async def test_bulk_erasure_reports_each_and_retries_without_redoing(
    client: httpx.AsyncClient, core: Core
) -> None:
    for i in range(5):
        r = await client.put(
            f"/v1/customers/bulk-{i}", json={"identities": {"email": f"b{i}@x.io"}}
        )
        assert r.status_code == 201
    ids = [f"bulk-{i}" for i in range(5)] + ["bulk-missing"]
    r = await client.post("/v1/erasures", json={"external_ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] == {"erased": 5, "already_erased": 0, "not_found": 1, "failed": 0}
    statuses = {x["external_id"]: x["status"] for x in body["results"]}
    assert statuses["bulk-missing"] == "not_found"

    async def erasures() -> int:
        page = await client.get("/v1/audit/entries", params={"action": "customer.erased"})
        return len(page.json()["items"])

    assert await erasures() == 5
    r = await client.post("/v1/erasures", json={"external_ids": ids})
    assert r.json()["summary"] == {"erased": 0, "already_erased": 5, "not_found": 1, "failed": 0}
    assert await erasures() == 5  # nothing redone
    r = await client.post("/v1/erasures", json={"external_ids": ["a", "a"]})
    assert r.status_code == 422


ERASED_READS = [
    ("GET", f"/v1/customers/{EXT}", None),
    ("GET", f"/v1/customers/{EXT}/check?purpose=analytics", None),
    ("GET", f"/v1/customers/{EXT}/consents", None),
    ("GET", f"/v1/customers/{EXT}/consents/history", None),
    ("GET", f"/v1/customers/{EXT}/preferences", None),
    ("GET", f"/v1/customers/{EXT}/events", None),
    ("POST", f"/v1/customers/{EXT}/events", {"name": "page_viewed"}),
    ("POST", f"/v1/customers/{EXT}/consents", {"decisions": [], "source": "api"}),
    ("POST", f"/v1/customers/{EXT}/token", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ERASED_READS)
async def test_every_call_about_an_erased_customer_answers_410(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """Every call naming an erased customer by external id answers 410 with the erasure date,
    never a 404 that reads as "never existed"."""
    await make_customer(client, EXT, EMAIL, FIRST)
    assert (await request(client, EXT, "erasure"))["state"] == "completed"
    r = await client.request(method, path, json=body)
    assert r.status_code == 410, r.text
    assert "was erased on" in r.json()["detail"]
