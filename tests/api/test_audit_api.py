"""The audit log over HTTP: browse with filters and cursors, export JSONL/CSV that verifies
offline, proofs, checkpoints, public keys, scopes."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import httpx

from consentry.audit import merkle
from consentry.audit.verify import verify_export
from consentry.core.runtime import Core
from consentry.crypto.signing import KeyRing
from consentry.settings import Settings

Client = httpx.AsyncClient


async def make_customers(client: Client, n: int, prefix: str = "a") -> None:
    for i in range(n):
        r = await client.put(f"/v1/customers/{prefix}-{i}", json={"region": "EU"})
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/customers/{prefix}-{i}/consents",
            json={"decisions": [{"purpose": "analytics", "decision": "granted"}]},
        )
        assert r.status_code == 201, r.text


async def key_with(client: Client, scope: str) -> dict[str, str]:
    r = await client.post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def keys(client: Client) -> KeyRing:
    r = await client.get("/.well-known/jwks.json", headers={"Authorization": ""})
    assert r.status_code == 200, r.text
    return KeyRing.load(r.content)


async def test_browse_filters_and_pages(client: Client) -> None:
    await make_customers(client, 4)
    r = await client.get("/v1/audit/entries", params={"customer": "a-2"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [e["action"] for e in items] == ["consent.recorded", "customer.created"]  # newest first
    assert len({e["target"] for e in items}) == 1 and items[0]["target"].startswith("subject:")
    r = await client.get(
        "/v1/audit/entries", params={"action": "consent.*", "order": "asc", "limit": 3}
    )
    page = r.json()
    assert [e["action"] for e in page["items"]] == ["consent.recorded"] * 3
    seqs = [e["seq"] for e in page["items"]]
    assert seqs == sorted(seqs)
    r = await client.get(
        "/v1/audit/entries",
        params={"action": "consent.*", "order": "asc", "limit": 3, "cursor": page["next_cursor"]},
    )
    rest = r.json()
    assert rest["items"][0]["seq"] > seqs[-1] and rest["next_cursor"] is None
    r = await client.get("/v1/audit/entries", params={"purpose": "analytics"})
    assert {e["action"] for e in r.json()["items"]} == {"consent.recorded"}
    assert len(r.json()["items"]) == 4
    r = await client.get("/v1/audit/entries", params={"purpose": "analytic"})  # no prefix match
    assert r.json()["items"] == []
    first = (await client.get("/v1/audit/entries/1")).json()
    r = await client.get("/v1/audit/entries", params={"since": first["at"], "limit": 1})
    assert r.json()["items"]


async def test_bad_filters_are_clear_problems(client: Client) -> None:
    r = await client.get("/v1/audit/entries", params={"customer": "nobody"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    r = await client.get(
        "/v1/audit/entries",
        params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert r.status_code == 422 and r.json()["field"] == "since"
    r = await client.get("/v1/audit/entries", params={"cursor": "garbage"})
    assert r.status_code == 422
    r = await client.get("/v1/audit/entries/999999")
    assert r.status_code == 404


async def test_scopes(client: Client) -> None:
    backend = await key_with(client, "backend:write")
    compliance = await key_with(client, "compliance:read")
    for path in ["/v1/audit/entries", "/v1/audit/checkpoints", "/v1/audit/export"]:
        assert (await client.get(path, headers=backend)).status_code == 403
        assert (await client.get(path, headers=compliance)).status_code == 200
    r = await client.post("/v1/audit/keys/rotate", headers=compliance)
    assert r.status_code == 403


async def test_full_export_verifies_offline(client: Client) -> None:
    await make_customers(client, 3)
    r = await client.get("/v1/audit/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.content.splitlines()
    header = json.loads(lines[0])
    assert header["proofs"] is False and header["seqs"] == [[1, len(lines) - 1]]
    assert all("proof" not in json.loads(x) for x in lines[1:])
    report = verify_export(lines, await keys(client))
    assert report.status == "verified", report.summary()
    assert report.entries == len(lines) - 1


async def test_customer_slice_carries_inclusion_proofs(client: Client) -> None:
    await make_customers(client, 3)
    r = await client.get("/v1/audit/export", params={"customer": "a-1"})
    lines = r.content.splitlines()
    header = json.loads(lines[0])
    entries = [json.loads(x) for x in lines[1:]]
    assert header["proofs"] is True and header["count"] == len(entries) == 2
    assert {e["target"] for e in entries} == {entries[0]["target"]}
    assert header["filters"]["subject_id"] in entries[0]["target"]
    report = verify_export(lines, await keys(client))
    assert report.status == "verified", report.summary()
    # the export itself is audited
    r = await client.get("/v1/audit/entries", params={"action": "audit.exported"})
    assert r.json()["items"][0]["details"]["entries"] == 2


async def test_csv_export(client: Client) -> None:
    await make_customers(client, 2)
    r = await client.get("/v1/audit/export.csv", params={"action": "consent.*"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["consent.recorded"] * 2
    assert all(len(row["proof"].split()) >= 1 for row in rows)
    assert int(r.headers["consentry-checkpoint-size"]) >= max(int(row["seq"]) for row in rows)


async def test_inclusion_and_consistency_proofs(client: Client, core: Core) -> None:
    await make_customers(client, 2)
    first = (await client.post("/v1/audit/checkpoints")).json()
    await make_customers(client, 2, "b")
    second = (await client.post("/v1/audit/checkpoints")).json()
    assert second["tree_size"] > first["tree_size"]
    r = await client.get("/v1/audit/entries/3/proof", params={"tree_size": second["tree_size"]})
    body = r.json()
    leaf = merkle.leaf_hash(bytes.fromhex(body["entry_hash"]))
    assert merkle.verify_inclusion(
        leaf,
        2,
        second["tree_size"],
        [bytes.fromhex(h) for h in body["proof"]],
        bytes.fromhex(second["root"]),
    )
    r = await client.get(
        "/v1/audit/consistency", params={"from": first["tree_size"], "to": second["tree_size"]}
    )
    body = r.json()
    assert merkle.verify_consistency(
        first["tree_size"],
        second["tree_size"],
        bytes.fromhex(first["root"]),
        bytes.fromhex(second["root"]),
        [bytes.fromhex(h) for h in body["proof"]],
    )
    r = await client.get(
        "/v1/audit/consistency", params={"from": 1, "to": second["tree_size"] + 1000}
    )
    assert r.status_code == 404 and "no signed checkpoint" in r.json()["detail"]
    r = await client.get("/v1/audit/entries/999/proof", params={"tree_size": second["tree_size"]})
    assert r.status_code == 422 and "not in the checkpoint" in r.json()["detail"]
    listed = (await client.get("/v1/audit/checkpoints", params={"limit": 1})).json()
    assert listed["items"][0]["tree_size"] == second["tree_size"] and listed["next_cursor"]


def encodings(secret: bytes) -> list[str]:
    return [
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.hex(),
    ]


async def test_public_keys_and_no_private_key_anywhere(
    client: Client, core: Core, settings: Settings
) -> None:
    await make_customers(client, 1)
    secrets = encodings(core.secrets.signing_seed)
    old = core.signing_key.key_id
    r = await client.post("/v1/audit/keys/rotate")
    assert r.status_code == 201
    new_seed = (settings.data_dir / "secrets" / "signing_key.key").read_text().strip()
    secrets += encodings(base64.b64decode(new_seed))
    listed = r.json()
    assert listed["current"] != old and {k["key_id"] for k in listed["items"]} >= {old}
    responses: list[Any] = [
        r.text,
        (await client.get("/.well-known/jwks.json")).text,
        (await client.get("/.well-known/consentry-audit-keys.pem")).text,
        (await client.get("/v1/audit/export")).text,
        (await client.get("/v1/audit/keys")).text,
    ]
    for text in responses:
        assert not any(secret in text for secret in secrets)
    ring = KeyRing.load((await client.get("/.well-known/consentry-audit-keys.pem")).content)
    assert old in ring and listed["current"] in ring


async def test_consent_proof_entries_carry_inclusion_proofs(client: Client) -> None:
    await make_customers(client, 2)
    r = await client.get("/v1/customers/a-1/consent-proof")
    assert r.status_code == 200, r.text
    backing = [e for p in r.json()["purposes"] for rec in p["records"] for e in rec["audit"]]
    assert backing, r.text
    ring = await keys(client)
    for e in backing:
        inc = e["inclusion"]
        cp = inc["checkpoint"]
        assert ring.get(cp["key_id"])  # signed by a published key
        assert merkle.verify_inclusion(
            merkle.leaf_hash(bytes.fromhex(e["hash"])),
            e["seq"] - 1,
            inc["tree_size"],
            [bytes.fromhex(h) for h in inc["proof"]],
            bytes.fromhex(cp["root"]),
        )


async def test_times_out_of_range_in_utc_are_clear_problems(client: Client) -> None:
    """Found by schemathesis: year 1 at +11:30 is year 0 in UTC; a 422, not a 500."""
    for path in ["/v1/audit/entries", "/v1/customers/x-1/events"]:
        if path.endswith("events"):
            await client.put("/v1/customers/x-1", json={"region": "EU"})
        r = await client.get(path, params={"since": "0001-01-01T01:00:00+11:30"})
        assert r.status_code == 422, r.text
        assert "out of range" in r.json()["detail"]
