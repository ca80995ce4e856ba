"""Consents over the API on both engines: recording, per channel, history, state and the check."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from consentry.core.runtime import Core

Client = httpx.AsyncClient


async def customer(client: Client, external_id: str = "c-1", region: str = "EU") -> None:
    r = await client.put(f"/v1/customers/{external_id}", json={"region": region})
    assert r.status_code in (200, 201), r.text


async def record(
    client: Client, *decisions: dict[str, Any], external_id: str = "c-1", **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/customers/{external_id}/consents", json={"decisions": list(decisions), **extra}
    )


async def check(
    client: Client, purpose: str, external_id: str = "c-1", **params: str
) -> dict[str, Any]:
    r = await client.get(
        f"/v1/customers/{external_id}/check", params={"purpose": purpose, **params}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def codes(verdict: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in verdict["reasons"]]


async def test_several_purposes_in_one_request(client: Client) -> None:
    """One request records one ledger row per decision, each with its notice and policy version."""
    await customer(client)
    r = await record(
        client,
        {"purpose": "analytics", "decision": "granted"},
        {"purpose": "personalization", "decision": "denied"},
        {"purpose": "sale_or_share", "decision": "withdrawn"},
        evidence={"ip": "203.0.113.7", "user_agent": "UA/1", "url": "https://x.test/p?q=secret#f"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(x["purpose"], x["decision"]) for x in body["records"]] == [
        ("analytics", "granted"),
        ("personalization", "denied"),
        ("sale_or_share", "withdrawn"),
    ]
    assert body["confirmations"] == []
    assert body["gpc"] == "absent"
    first = body["records"][0]
    assert first["notice_version"] == "1"
    assert first["notice_hash"].startswith("sha256:")
    assert first["legal_basis"] == "consent"
    assert first["source"] == "api"
    assert first["actor"].startswith("key:")
    # evidence: IP only as a hash, URL without its query
    assert "ip" not in first["evidence"] and len(first["evidence"]["ip_hash"]) == 64
    assert first["evidence"]["url"] == "https://x.test/p"

    assert (await check(client, "analytics"))["decision"] == "allow"
    denied = await check(client, "personalization")
    assert denied["decision"] == "deny" and codes(denied) == ["denied"]


async def test_per_channel_decisions(client: Client) -> None:
    """A decision for one channel governs that channel only; others fall back to the purpose."""
    await customer(client)
    r = await record(
        client,
        {"purpose": "product_updates", "channel": "email", "decision": "withdrawn"},
        {"purpose": "product_updates", "channel": "push", "decision": "granted"},
    )
    assert r.status_code == 201, r.text
    assert [x["channel"] for x in r.json()["records"]] == ["email", "push"]

    email = await check(client, "product_updates", channel="email")
    assert email["decision"] == "deny" and codes(email) == ["withdrawn"]
    assert email["channel"] == "email"
    push = await check(client, "product_updates", channel="push")
    assert push["decision"] == "allow" and codes(push) == ["granted"]
    in_app = await check(client, "product_updates", channel="in_app")
    assert in_app["decision"] == "allow" and codes(in_app) == ["legitimate_interest"]

    # a channel the purpose may not use is refused when recording, and denied when asked
    r = await record(
        client, {"purpose": "product_updates", "channel": "sms", "decision": "granted"}
    )
    assert r.status_code == 422
    assert r.json()["field"] == "decisions[0].channel"
    sms = await check(client, "product_updates", channel="sms")
    assert sms["decision"] == "deny" and codes(sms) == ["channel_not_allowed"]


async def test_current_state_and_history_paging(client: Client) -> None:
    """State keeps the latest decision per purpose; history keeps every row, oldest first, paged."""
    await customer(client)
    for decision in ("granted", "withdrawn", "granted", "denied"):
        assert (
            await record(client, {"purpose": "analytics", "decision": decision})
        ).status_code == 201
    assert (
        await record(client, {"purpose": "personalization", "decision": "granted"})
    ).status_code == 201

    r = await client.get("/v1/customers/c-1/consents")
    assert r.status_code == 200, r.text
    state = {(x["purpose"], x["channel"]): x["decision"] for x in r.json()["items"]}
    assert state == {("analytics", ""): "denied", ("personalization", ""): "granted"}

    seen: list[dict[str, Any]] = []
    sizes: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/customers/c-1/consents/history", params=params)
        assert r.status_code == 200, r.text
        sizes.append(len(r.json()["items"]))
        seen.extend(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(sizes) < 10
    assert sizes == [2, 2, 1]
    assert len({x["id"] for x in seen}) == 5
    assert [x["decision"] for x in seen] == ["granted", "withdrawn", "granted", "denied", "granted"]
    times = [x["recorded_at"] for x in seen]
    assert times == sorted(times)

    r = await client.get(
        "/v1/customers/c-1/consents/history", params={"purpose": "personalization"}
    )
    assert [x["purpose"] for x in r.json()["items"]] == ["personalization"]
    r = await client.get("/v1/customers/c-1/consents/history", params={"cursor": "garbage!"})
    assert r.status_code == 422


async def test_check_reasons(client: Client) -> None:
    """The check names why: withdrawn, legitimate interest, contract despite email off, defaults."""
    await customer(client, "eu", "EU")
    await customer(client, "ca", "US-CA")

    none_yet = await check(client, "analytics", "eu")
    assert none_yet["decision"] == "deny" and codes(none_yet) == ["region_default_deny"]
    assert (await check(client, "sale_or_share", "ca"))["decision"] == "allow"
    assert codes(await check(client, "sale_or_share", "ca")) == ["region_default_allow"]

    await record(client, {"purpose": "analytics", "decision": "granted"}, external_id="eu")
    await record(client, {"purpose": "analytics", "decision": "withdrawn"}, external_id="eu")
    withdrawn = await check(client, "analytics", "eu")
    assert withdrawn["decision"] == "deny" and codes(withdrawn) == ["withdrawn"]
    assert withdrawn["legal_basis"] == "consent"

    li = await check(client, "product_updates", "eu", channel="email")
    assert li["decision"] == "allow" and codes(li) == ["legitimate_interest"]
    assert li["legal_basis"] == "legitimate_interest"

    r = await client.patch("/v1/customers/eu/preferences", json={"channels": {"email": False}})
    assert r.status_code == 200, r.text
    essential = await check(client, "essential", "eu", channel="email")
    assert essential["decision"] == "allow"
    assert codes(essential) == ["legal_basis"]
    assert essential["legal_basis"] == "contract"
    # the objectable purpose on the same channel is now off
    off = await check(client, "product_updates", "eu", channel="email")
    assert off["decision"] == "deny" and codes(off) == ["channel_off"]


async def test_channel_off_overrides_topic_opt_in(client: Client) -> None:
    """Topic newsletter on with email switched off: deny with channel_off, naming the topic."""
    await customer(client)
    r = await record(
        client, {"purpose": "marketing_email", "channel": "email", "decision": "granted"}
    )
    assert r.status_code == 201, r.text
    token = r.json()["confirmations"][0]["token"]
    assert r.json()["records"][0]["decision"] == "pending"
    pending = await check(client, "marketing_email", channel="email", topic="newsletter")
    assert codes(pending) == ["pending"]
    r = await client.post("/v1/confirmations", json={"token": token}, headers={"Authorization": ""})
    assert r.status_code == 201, r.text
    r = await client.patch("/v1/customers/c-1/preferences", json={"topics": {"newsletter": True}})
    assert r.status_code == 200
    allowed = await check(client, "marketing_email", channel="email", topic="newsletter")
    assert allowed["decision"] == "allow", allowed

    r = await client.patch("/v1/customers/c-1/preferences", json={"channels": {"email": False}})
    assert r.status_code == 200
    verdict = await check(client, "marketing_email", channel="email", topic="newsletter")
    assert verdict["decision"] == "deny"
    assert codes(verdict) == ["channel_off"]
    assert "newsletter" in verdict["reasons"][0]["message"]


async def test_unknown_purpose(client: Client) -> None:
    """An unknown purpose is a 422 when recording (nothing stored) and a deny when checking."""
    await customer(client)
    r = await record(
        client,
        {"purpose": "analytics", "decision": "granted"},
        {"purpose": "mind_reading", "decision": "granted"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "decisions[1].purpose"
    assert "mind_reading" in r.json()["detail"]
    r = await client.get("/v1/customers/c-1/consents/history")
    assert r.json()["items"] == []

    verdict = await check(client, "mind_reading")
    assert verdict["decision"] == "deny"
    assert codes(verdict) == ["unknown_purpose"]
    assert verdict["legal_basis"] is None


async def test_unknown_notice_version_is_422(client: Client) -> None:
    """A notice version the purpose never had is a 422 naming the field and the known versions."""
    await customer(client)
    r = await record(client, {"purpose": "analytics", "decision": "granted", "notice_version": "9"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "decisions[0].notice_version"
    assert "9" in r.json()["detail"]
    r = await record(
        client,
        {
            "purpose": "marketing_email",
            "channel": "email",
            "decision": "granted",
            "notice_version": "1",
        },
    )
    assert r.status_code == 201
    assert r.json()["records"][0]["notice_version"] == "1"


async def test_purposes_in_english_and_japanese(client: Client, core: Core) -> None:
    """Purposes come in en and ja, with the policy's notice text and a sha256 of that exact text."""
    en = await client.get("/v1/purposes", params={"language": "en"})
    ja = await client.get("/v1/purposes", params={"language": "ja"})
    assert en.status_code == 200 and ja.status_code == 200, ja.text
    assert ja.json()["language"] == "ja"
    assert ja.json()["policy_version"] == en.json()["policy_version"] == core.policy.version
    en_items = {p["name"]: p for p in en.json()["items"]}
    ja_items = {p["name"]: p for p in ja.json()["items"]}
    assert set(en_items) == set(ja_items) == set(core.policy.purposes)
    for name, item in ja_items.items():
        notice = core.policy.purposes[name].current_notice
        assert item["notice"]["text"] == notice.texts["ja"]
        assert item["notice"]["language"] == "ja"
        for lang, it in (("ja", item), ("en", en_items[name])):
            text = it["notice"]["text"]
            assert it["notice"]["content_hash"] == (
                "sha256:" + hashlib.sha256(text.encode()).hexdigest()
            ), (name, lang)
        assert item["notice"]["content_hash"] != en_items[name]["notice"]["content_hash"]
        assert item["notice"]["version"] == en_items[name]["notice"]["version"]
    assert ja_items["essential"]["title"] == "サービスに不可欠なお知らせ"
    assert "契約" in ja_items["essential"]["notice"]["text"]
    assert ja_items["marketing_email"]["notice_history"] == ["1", "2"]

    one = await client.get("/v1/purposes/analytics", params={"language": "ja"})
    assert one.status_code == 200
    assert one.json()["notice"]["text"] == ja_items["analytics"]["notice"]["text"]

    # a record made in Japanese carries the Japanese notice hash
    await customer(client)
    r = await record(client, {"purpose": "analytics", "decision": "granted", "language": "ja"})
    assert r.status_code == 201, r.text
    assert r.json()["records"][0]["notice_hash"] == ja_items["analytics"]["notice"]["content_hash"]


async def test_unknown_language_is_422(client: Client) -> None:
    """A language the policy does not speak is a 422 on field `language`; unknown purpose 404."""
    r = await client.get("/v1/purposes", params={"language": "fr"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "language"
    r = await client.get("/v1/purposes/analytics", params={"language": "fr"})
    assert r.status_code == 422
    r = await client.get("/v1/purposes/mind_reading")
    assert r.status_code == 404
    await customer(client)
    r = await record(client, {"purpose": "analytics", "decision": "granted", "language": "fr"})
    assert r.status_code == 422
    assert r.json()["field"] == "decisions[0].language"
