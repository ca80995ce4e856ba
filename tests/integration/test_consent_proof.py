"""Proof of consent at a moment in time, on both engines: the ledger as of T through the decision
logic with now=T, the notice text shown, and the audit entries that back each record."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from consentry.access.keys import bootstrap_admin_key, create_key
from consentry.app import create_app
from consentry.audit import merkle
from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.core.principals import SYSTEM
from consentry.core.runtime import Core
from consentry.ledger.proofs import consent_proof
from consentry.settings import DEFAULT_POLICY, Settings

Client = httpx.AsyncClient
START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
T_GRANT = START + timedelta(days=1)  # 2031-03-02: granted under notice 1
T_WITHDRAW = START + timedelta(days=31)  # 2031-04-01: withdrawn
V2_PUBLISHED = "2031-06-01"
T_REGRANT = datetime(2031, 7, 1, 9, 0, tzinfo=UTC)  # granted again under notice 2
EXPIRY_DAYS = 180
V1_EN = (
    "With your permission we measure how the product is used, in aggregate, to find what to"
    " improve. We do not sell this data. You can withdraw this consent at any time."
)
V2_EN = "Version two: we measure product usage in aggregate and keep it for 180 days at most."
UA = '<script>alert("ua")</script> Mozilla/5.0'


def write_policy(path: Path, *, v2: bool = True, v1_text: str | None = None) -> Path:
    """The default policy with analytics given expiry, re-consent and (optionally) notice 2."""
    doc = yaml.safe_load(DEFAULT_POLICY.read_text())
    analytics = doc["purposes"]["analytics"]
    analytics["expires_after_days"] = EXPIRY_DAYS
    analytics["reconsent_on_notice_change"] = True
    if v1_text is not None:
        analytics["notices"][0]["text"]["en"] = v1_text
    if v2:
        analytics["notices"].append(
            {"version": "2", "published": V2_PUBLISHED, "text": {"en": V2_EN, "ja": "第2版"}}
        )
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path


@asynccontextmanager
async def frozen(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[Core, Client]]:
    core = await open_core(settings, clock=clock)
    try:
        key = await bootstrap_admin_key(core)  # None when the database was opened before
        if key is None:
            key = (await create_key(core, "again", ["admin"], SYSTEM)).key
        app = create_app(settings, core=core)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
        ) as client:
            yield core, client
    finally:
        await close_core(core)


@pytest.fixture
def policy_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(settings, policy_path=write_policy(tmp_path / "policy.yaml"))


async def record(client: Client, ext: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = await client.post(f"/v1/customers/{ext}/consents", json=body)
    assert r.status_code == 201, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    return records


async def proof_at(client: Client, ext: str, at: datetime | None = None) -> dict[str, Any]:
    params = {"at": at.isoformat()} if at else {}
    r = await client.get(f"/v1/customers/{ext}/consent-proof", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def purpose(proof: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in proof["purposes"] if p["purpose"] == name]
    [one] = found
    return one


def codes(p: dict[str, Any]) -> list[str]:
    return [r["code"] for r in p["reasons"]]


async def timeline(client: Client, clock: FrozenClock, ext: str = "p-1") -> dict[str, str]:
    """Grant (notice 1), withdraw, grant again (notice 2); the record ids by step."""
    r = await client.put(f"/v1/customers/{ext}", json={"region": "EU"})
    assert r.status_code == 201, r.text
    clock.now = T_GRANT
    evidence = {"ip": "203.0.113.9", "user_agent": UA, "url": "https://shop.test/prefs?x=1"}
    grant = await record(
        client,
        ext,
        {
            "decisions": [{"purpose": "analytics", "decision": "granted", "notice_version": "1"}],
            "source": "preference_center",
            "evidence": evidence,
        },
    )
    clock.now = T_WITHDRAW
    withdraw = await record(
        client,
        ext,
        {"decisions": [{"purpose": "analytics", "decision": "withdrawn", "notice_version": "1"}]},
    )
    clock.now = T_REGRANT
    regrant = await record(
        client, ext, {"decisions": [{"purpose": "analytics", "decision": "granted"}]}
    )
    clock.now = T_REGRANT + timedelta(days=400)
    return {"grant": grant[0]["id"], "withdraw": withdraw[0]["id"], "regrant": regrant[0]["id"]}


async def test_proof_follows_the_ledger_through_time(
    policy_settings: Settings,
) -> None:
    """Before the grant: region default (EU opt-in); then granted under notice 1 with its text,
    withdrawn, granted again under notice 2, and expired after expires_after_days."""
    clock = FrozenClock(START)
    async with frozen(policy_settings, clock) as (_, client):
        ids = await timeline(client, clock)
        before = purpose(await proof_at(client, "p-1", T_GRANT - timedelta(hours=1)), "analytics")
        assert (before["decision"], codes(before), before["decided_by"]) == (
            "deny",
            ["region_default_deny"],
            "region_default",
        )
        assert before["records"] == []

        granted = purpose(await proof_at(client, "p-1", T_GRANT + timedelta(hours=1)), "analytics")
        assert (granted["decision"], codes(granted), granted["decided_by"]) == (
            "allow",
            ["granted"],
            "ledger",
        )
        assert granted["notice_in_force"] == "1"  # notice 2 was not published yet
        [rec] = granted["records"]
        assert (rec["id"], rec["decision"], rec["source"]) == (
            ids["grant"],
            "granted",
            "preference_center",
        )
        assert rec["notice"]["version"] == "1" and rec["notice"]["text"] == V1_EN
        assert rec["notice"]["in_policy"] and rec["notice"]["hash_matches"]
        assert rec["legal_basis"] == "consent" and rec["actor"].startswith("key:")
        assert rec["evidence"]["user_agent"] == UA
        assert rec["evidence"]["url"] == "https://shop.test/prefs"
        assert "ip" not in rec["evidence"] and len(rec["evidence"]["ip_hash"]) == 64
        expires = datetime.fromisoformat(rec["expires_at"]) - datetime.fromisoformat(
            rec["recorded_at"]
        )
        assert expires == timedelta(days=EXPIRY_DAYS)

        withdrawn = purpose(
            await proof_at(client, "p-1", T_WITHDRAW + timedelta(days=1)), "analytics"
        )
        assert (withdrawn["decision"], codes(withdrawn)) == ("deny", ["withdrawn"])
        assert [r["id"] for r in withdrawn["records"]] == [ids["withdraw"]]

        again = purpose(await proof_at(client, "p-1", T_REGRANT + timedelta(days=1)), "analytics")
        assert (again["decision"], codes(again), again["notice_in_force"]) == (
            "allow",
            ["granted"],
            "2",
        )
        [rec] = again["records"]
        assert (rec["id"], rec["notice"]["version"], rec["notice"]["text"]) == (
            ids["regrant"],
            "2",
            V2_EN,
        )

        expired_at = T_REGRANT + timedelta(days=EXPIRY_DAYS, hours=1)
        expired = purpose(await proof_at(client, "p-1", expired_at), "analytics")
        assert (expired["decision"], codes(expired)) == ("deny", ["expired"])
        assert [r["id"] for r in expired["records"]] == [ids["regrant"]]


async def test_grant_under_an_old_notice_is_outdated_once_the_new_one_is_published(
    policy_settings: Settings,
) -> None:
    """reconsent_on_notice_change applies as of T: allowed before notice 2 was published, denied
    (notice_outdated) after."""
    clock = FrozenClock(T_GRANT)
    async with frozen(policy_settings, clock) as (_, client):
        await client.put("/v1/customers/p-2", json={"region": "EU"})
        await record(
            client,
            "p-2",
            {"decisions": [{"purpose": "analytics", "decision": "granted", "notice_version": "1"}]},
        )
        clock.now = datetime(2031, 6, 15, tzinfo=UTC)
        may = purpose(await proof_at(client, "p-2", datetime(2031, 5, 31, tzinfo=UTC)), "analytics")
        assert (may["decision"], codes(may), may["notice_in_force"]) == ("allow", ["granted"], "1")
        june = purpose(await proof_at(client, "p-2", datetime(2031, 6, 2, tzinfo=UTC)), "analytics")
        assert (june["decision"], codes(june), june["notice_in_force"]) == (
            "deny",
            ["notice_outdated"],
            "2",
        )


async def test_every_purpose_is_shown_and_unrecorded_ones_say_why(
    core: Core, client: Client
) -> None:
    """Purposes without a record are decided by legal basis or region default, and say so."""
    r = await client.put("/v1/customers/p-3", json={"region": "US-CA"})
    assert r.status_code == 201
    proof = await proof_at(client, "p-3")
    assert [p["purpose"] for p in proof["purposes"]] == list(core.policy.purposes)
    assert (proof["region"], proof["regulation"], proof["existed"]) == ("US-CA", "CCPA", True)
    by = {p["purpose"]: (p["decision"], p["decided_by"], codes(p)) for p in proof["purposes"]}
    assert by["essential"] == ("allow", "legal_basis", ["legal_basis"])
    assert by["product_updates"] == ("allow", "legitimate_interest", ["legitimate_interest"])
    assert by["sale_or_share"] == ("allow", "region_default", ["region_default_allow"])
    assert by["analytics"] == ("allow", "region_default", ["region_default_allow"])
    assert all(not p["records"] for p in proof["purposes"])
    assert proof["controller"]["name"] == core.policy.controller["name"]
    assert proof["policy_version"] == core.policy.version


async def test_customer_created_after_t_gets_defaults_and_a_note(client: Client) -> None:
    """A proof before the customer existed is not an error: defaults only, and it says so."""
    r = await client.put("/v1/customers/p-4", json={"region": "EU"})
    assert r.status_code == 201
    await record(client, "p-4", {"decisions": [{"purpose": "analytics", "decision": "granted"}]})
    proof = await proof_at(client, "p-4", datetime(2000, 1, 1, tzinfo=UTC))
    assert proof["existed"] is False
    assert "did not exist yet" in proof["notes"][0]
    analytics = purpose(proof, "analytics")
    assert (analytics["decision"], codes(analytics), analytics["records"]) == (
        "deny",
        ["region_default_deny"],
        [],
    )


async def test_region_is_the_one_in_force_at_t(policy_settings: Settings) -> None:
    """A customer who moved from US-CA to EU is judged under CCPA before the move."""
    clock = FrozenClock(START)
    async with frozen(policy_settings, clock) as (_, client):
        await client.put("/v1/customers/p-5", json={"region": "US-CA"})
        clock.advance(days=10)
        r = await client.put("/v1/customers/p-5", json={"region": "EU"})
        assert r.status_code == 200, r.text
        clock.advance(days=1)
        then = await proof_at(client, "p-5", START + timedelta(days=5))
        assert (then["region"], purpose(then, "analytics")["decision"]) == ("US-CA", "allow")
        assert any("region at that time was US-CA" in n for n in then["notes"])
        now = await proof_at(client, "p-5")
        assert (now["region"], purpose(now, "analytics")["decision"]) == ("EU", "deny")


async def test_backing_audit_entries_match_the_audit_log(core: Core, client: Client) -> None:
    """Each record lists the audit entries naming it, seq and hash as in audit_log; a double
    opt-in grant is backed by consent.confirmed."""
    await client.put("/v1/customers/p-6", json={"region": "EU"})
    out = await client.post(
        "/v1/customers/p-6/consents",
        json={
            "decisions": [
                {"purpose": "analytics", "decision": "granted"},
                {"purpose": "marketing_email", "channel": "email", "decision": "granted"},
            ]
        },
    )
    assert out.status_code == 201, out.text
    token = out.json()["confirmations"][0]["token"]
    r = await client.post("/v1/confirmations", json={"token": token})
    assert r.status_code == 201, r.text
    confirmed_id = r.json()["id"]

    proof = await proof_at(client, "p-6")
    rows = await core.db.fetch("SELECT seq, action, details, hash FROM audit_log ORDER BY seq")
    by_seq = {int(row["seq"]): row for row in rows}
    records = [rec for p in proof["purposes"] for rec in p["records"]]
    assert {rec["id"] for rec in records} >= {confirmed_id}
    for rec in records:
        assert rec["audit"], rec
        for entry in rec["audit"]:
            row = by_seq[entry["seq"]]
            assert (row["hash"], row["action"]) == (entry["hash"], entry["action"])
            assert rec["id"] in row["details"]
            inclusion = entry["inclusion"]  # proven in a signed checkpoint
            assert inclusion["leaf_index"] == entry["seq"] - 1
            assert merkle.verify_inclusion(
                merkle.leaf_hash(bytes.fromhex(entry["hash"])),
                inclusion["leaf_index"],
                inclusion["tree_size"],
                [bytes.fromhex(h) for h in inclusion["proof"]],
                bytes.fromhex(inclusion["checkpoint"]["root"]),
            )
    email = purpose(proof, "marketing_email")
    [rec] = email["records"]
    assert (rec["id"], rec["channel"], rec["source"]) == (confirmed_id, "email", "double_opt_in")
    assert [e["action"] for e in rec["audit"]] == ["consent.confirmed"]
    assert [(c["channel"], c["decision"]) for c in email["channels"]] == [("email", "allow")]


async def test_staff_read_is_audited_without_personal_data(core: Core, client: Client) -> None:
    """The proof read by an API key adds one consent_proof.read entry; a system read adds none."""
    r = await client.put(
        "/v1/customers/p-7", json={"region": "EU", "identities": {"email": "p7@example.com"}}
    )
    subject_id = r.json()["id"]
    before = await core.db.fetch("SELECT seq FROM audit_log")
    await proof_at(client, "p-7")
    rows = await core.db.fetch("SELECT * FROM audit_log ORDER BY seq")
    [entry] = rows[len(before) :]
    assert (entry["action"], entry["target"]) == ("consent_proof.read", f"subject:{subject_id}")
    assert entry["actor"].startswith("key:")
    details = json.loads(entry["details"])
    assert set(details) == {"at", "records"}
    assert "p7@example.com" not in entry["details"] and "p-7" not in entry["details"]

    proof = await consent_proof(core, UUID(subject_id), None, SYSTEM)
    assert str(proof.subject_id) == subject_id
    assert len(await core.db.fetch("SELECT seq FROM audit_log")) == len(rows)


async def test_notice_versions_missing_or_edited_in_the_current_policy_are_flagged(
    settings: Settings, tmp_path: Path
) -> None:
    """After the policy loses notice 2 and edits notice 1's text, the proof says the version is
    not in the current policy file (no text) and that notice 1's text no longer matches."""
    clock = FrozenClock(START)
    first = replace(settings, policy_path=write_policy(tmp_path / "a.yaml"))
    async with frozen(first, clock) as (_, client):
        ids = await timeline(client, clock, "p-8")
    second = replace(
        settings, policy_path=write_policy(tmp_path / "b.yaml", v2=False, v1_text="Edited.")
    )
    async with frozen(second, clock) as (_, client):
        old = purpose(await proof_at(client, "p-8", T_GRANT + timedelta(hours=1)), "analytics")
        [rec] = old["records"]
        assert rec["id"] == ids["grant"]
        notice = rec["notice"]
        assert (notice["in_policy"], notice["hash_matches"], notice["text"]) == (
            True,
            False,
            "Edited.",
        )
        assert "does not hash to the recorded hash" in notice["note"]
        new = purpose(await proof_at(client, "p-8", T_REGRANT + timedelta(days=1)), "analytics")
        notice = new["records"][0]["notice"]
        assert (notice["version"], notice["in_policy"], notice["text"]) == ("2", False, None)
        assert "not in the current policy file" in notice["note"]


async def test_future_or_naive_at_is_422(client: Client) -> None:
    """T in the future cannot be proven; a time without offset is ambiguous."""
    await client.put("/v1/customers/p-9", json={"region": "EU"})
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for at, words in ((future, "in the future"), ("2025-01-01T00:00:00", "UTC offset")):
        r = await client.get("/v1/customers/p-9/consent-proof", params={"at": at})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == "at" and words in r.json()["detail"]
    r = await client.get("/v1/customers/p-9/consent-proof", params={"at": "yesterday"})
    assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json"
    r = await client.get("/v1/customers/nobody/consent-proof")
    assert r.status_code == 404, r.text


async def test_scopes(client: Client) -> None:
    """compliance:read and admin may read a proof; backend keys and customers may not."""
    await client.put("/v1/customers/p-10", json={"region": "EU"})
    keys = {}
    for scope in ("compliance:read", "backend:write", "backend:read"):
        r = await client.post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
        keys[scope] = r.json()["key"]
    token = (await client.post("/v1/customers/p-10/token", json={})).json()["token"]
    expected = {
        keys["compliance:read"]: 200,
        keys["backend:write"]: 403,
        keys["backend:read"]: 403,
        token: 403,
    }
    for credential, status in expected.items():
        for path in ("consent-proof", "consent-proof.html"):
            r = await client.get(
                f"/v1/customers/p-10/{path}", headers={"Authorization": f"Bearer {credential}"}
            )
            assert r.status_code == status, (path, r.text)
            if status == 403:
                assert "compliance:read" in r.json()["detail"]
