"""Logs carry no personal data: a full API flow on both engines, and the `redact` processor."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog

from consentry import logs
from consentry.logs import REDACTED, redact

Client = httpx.AsyncClient

PEOPLE = [
    {
        "external_id": "acct-7781-kestrel",
        "email": "Wilhelmina.Quackenbush@example-mail.test",
        "phone": "+81 90 5551 2468",
        "first_name": "Wilhelmina",
        "last_name": "Quackenbush",
    },
    {
        "external_id": "acct-9902-osprey",
        "email": "bartholomew.zylstra@corp.example.net",
        "phone": "+1 (628) 555-0147",
        "first_name": "Bartholomew",
        "last_name": "Zylstra",
    },
]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON), written to a buffer; reset afterwards."""
    stream = io.StringIO()
    logs.configure("debug", json=True, stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()


def forbidden_strings() -> list[str]:
    out: list[str] = []
    for p in PEOPLE:
        digits = re.sub(r"\D", "", p["phone"])
        out += [
            p["external_id"],
            p["email"],
            p["email"].lower(),
            p["first_name"],
            p["last_name"],
            p["phone"],
            digits,
            digits[-8:],
        ]
    return out


async def run_flow(client: Client) -> list[str]:
    """Everything a backend and a customer do; returns the secrets the responses handed out."""
    handed_out: list[str] = []
    for p in PEOPLE:
        ext = p["external_id"]
        r = await client.put(
            f"/v1/customers/{ext}",
            json={
                "region": "EU",
                "identities": {"email": p["email"], "phone": p["phone"]},
                "attributes": {
                    "first_name": p["first_name"],
                    "last_name": p["last_name"],
                    "plan": "pro",
                },
            },
            headers={"Idempotency-Key": f"create-{ext}"},
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/customers/{ext}/consents",
            json={
                "decisions": [
                    {"purpose": "analytics", "decision": "granted"},
                    {"purpose": "marketing_email", "channel": "email", "decision": "granted"},
                ],
                "evidence": {
                    "ip": "198.51.100.23",
                    "user_agent": f"Mozilla {p['first_name']}",
                    "url": f"https://shop.test/p?email={p['email']}",
                },
            },
        )
        assert r.status_code == 201, r.text
        confirm = r.json()["confirmations"][0]["token"]
        handed_out.append(confirm)
        r = await client.post("/v1/confirmations", json={"token": confirm})
        assert r.status_code == 201, r.text
        r = await client.patch(
            f"/v1/customers/{ext}/preferences",
            json={
                "channels": {"sms": False},
                "topics": {"newsletter": True},
                "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Asia/Tokyo"},
            },
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/v1/customers/{ext}/events",
            json={
                "name": "feature_used",
                "properties": {"who": p["first_name"], "contact": p["email"]},
            },
        )
        assert r.status_code == 201, r.text
        assert (await client.get(f"/v1/customers/{ext}/events")).status_code == 200
        assert (
            await client.get(f"/v1/customers/{ext}", params={"reason": "support"})
        ).status_code == 200
        r = await client.get(
            f"/v1/customers/{ext}/check", params={"purpose": "marketing_email", "channel": "email"}
        )
        assert r.json()["decision"] == "allow", r.text
        r = await client.post("/v1/customers/search", json={"email": p["email"].upper()})
        assert r.status_code == 200 and r.json()["external_id"] == ext
        r = await client.post("/v1/customers/search", json={"phone": p["phone"]})
        assert r.status_code == 200 and r.json()["external_id"] == ext

        r = await client.post(f"/v1/customers/{ext}/token", json={})
        assert r.status_code == 201
        token = r.json()["token"]
        handed_out.append(token)
        me = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/v1/me/consents", headers=me)).status_code == 200
        r = await client.post(
            "/v1/me/consents",
            headers=me,
            json={"decisions": [{"purpose": "analytics", "decision": "withdrawn"}]},
        )
        assert r.status_code == 201
        assert (
            await client.patch("/v1/me/preferences", headers=me, json={"language": "ja"})
        ).status_code == 200
        # a customer token where an API key is needed, and the other way round
        assert (await client.get(f"/v1/customers/{ext}", headers=me)).status_code == 403

    # errors that carry personal data in the request
    first = PEOPLE[0]
    r = await client.put(
        f"/v1/customers/{PEOPLE[1]['external_id']}", json={"identities": {"email": first["email"]}}
    )
    assert r.status_code == 409
    r = await client.post("/v1/customers/search", json={"email": "nobody-" + first["email"]})
    assert r.status_code == 404
    r = await client.get(f"/v1/customers/{first['external_id']}-missing")
    assert r.status_code == 404
    r = await client.get("/v1/customers/x", headers={"Authorization": f"Bearer {first['email']}"})
    assert r.status_code == 401
    r = await client.put(
        f"/v1/customers/{first['external_id']}",
        content=f'{{"identities": {{"email": "{first["email"]}"'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = await client.get(f"/v1/nowhere/{first['external_id']}")
    assert r.status_code == 404
    r = await client.post(
        "/v1/api-keys", json={"name": f"key for {first['first_name']}", "scopes": ["backend:read"]}
    )
    assert r.status_code == 201
    handed_out.append(r.json()["key"])
    return handed_out


async def test_no_personal_data_in_logs(
    client: Client, admin_key: str, captured: io.StringIO
) -> None:
    """After a full flow the log holds JSON lines with request ids and none of the personal data."""
    handed_out = await run_flow(client)
    text = captured.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) >= 30, text[:2000]

    lowered = text.lower()
    for value in forbidden_strings():
        assert value.lower() not in lowered, f"{value!r} leaked into the log"
    for secret in [*handed_out, admin_key]:
        assert secret not in text, "a credential leaked into the log"
        if secret.startswith("ck_"):
            assert secret.split("_", 2)[2] not in text, "an API key secret leaked into the log"
    assert "198.51.100.23" not in text

    request_ids: list[str] = []
    for line in lines:
        entry: dict[str, Any] = json.loads(line)  # every line is one JSON object
        assert "level" in entry and "timestamp" in entry
        if entry.get("event") == "request":
            assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"]), entry
            assert entry["route"].startswith(("/v1/", "(unrouted)")), entry
            request_ids.append(entry["request_id"])
    assert len(request_ids) >= 36  # every routed request above has its access line
    assert len(set(request_ids)) == len(request_ids)
    assert any(
        e.startswith("customer:") for e in (json.loads(line).get("actor") or "" for line in lines)
    )


def run(event: dict[str, Any]) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


def test_redact_drops_values_under_personal_keys() -> None:
    """Values under personal or secret keys become [redacted], whatever their case or type."""
    out = run(
        {
            "event": "x",
            "email": "a@b.test",
            "Phone": "+33612345678",
            "token": "abc",
            "Authorization": "Bearer ck_00_zz",
            "external_id": "acct-1",
            "first_name": "Ann",
            "identities": {"email": "a@b.test"},
            "ip": "10.0.0.1",
            "count": 3,
        }
    )
    for key in (
        "email",
        "Phone",
        "token",
        "Authorization",
        "external_id",
        "first_name",
        "identities",
        "ip",
    ):
        assert out[key] == REDACTED, key
    assert out["event"] == "x"
    assert out["count"] == 3


def test_redact_masks_emails_and_api_key_secrets_in_text() -> None:
    """Emails and API-key secrets inside free text are masked; the key id stays for tracing."""
    out = run(
        {
            "event": "failed for Ann.Lee+x@Example.co.jp today",
            "detail": "key ck_0123456789abcdef_S3cr3t-Value_xyz was used",
        }
    )
    assert "Ann.Lee" not in out["event"] and "Example.co.jp" not in out["event"]
    assert out["event"] == f"failed for {REDACTED} today"
    assert "S3cr3t" not in out["detail"]
    assert "ck_0123456789abcdef_" in out["detail"]


def test_redact_cleans_nested_values() -> None:
    """Personal keys and emails nested in dicts and lists are cleaned too."""
    out = run(
        {
            "event": "x",
            "details": {
                "user": {"email": "a@b.test", "plan": "pro"},
                "notes": ["mail c@d.test", 5],
            },
        }
    )
    assert out["details"] == {
        "user": {"email": REDACTED, "plan": "pro"},
        "notes": [f"mail {REDACTED}", 5],
    }
    assert "a@b.test" not in json.dumps(out) and "c@d.test" not in json.dumps(out)


def test_configured_logger_applies_redact() -> None:
    """A logger configured by `configure` writes JSON with the personal fields redacted."""
    stream = io.StringIO()
    logs.configure("info", json=True, stream=stream)
    try:
        structlog.get_logger("t").info(
            "hello someone@example.test", email="someone@example.test", plan="pro"
        )
        structlog.get_logger("t").debug("hidden at info level")
    finally:
        structlog.reset_defaults()
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert "someone@example.test" not in line
    assert entry["email"] == REDACTED and entry["plan"] == "pro"
    assert entry["level"] == "info"
