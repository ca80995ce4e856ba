"""The proof of consent as a printable page, and signed receipts over HTTP, on both engines."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest

from consentry.core.runtime import Core
from consentry.crypto.signing import KeyRing, jws_verify

Client = httpx.AsyncClient
UA = '<script>alert("x")</script> Evil/1.0'


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def customer_with_consents(client: Client, ext: str) -> list[str]:
    r = await client.put(
        f"/v1/customers/{ext}", json={"region": "EU", "identities": {"email": f"{ext}@example.com"}}
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/customers/{ext}/consents",
        json={
            "decisions": [
                {"purpose": "analytics", "decision": "granted"},
                {"purpose": "personalization", "decision": "denied", "language": "ja"},
            ],
            "source": "preference_center",
            "evidence": {"user_agent": UA, "url": "https://shop.test/p"},
        },
    )
    assert r.status_code == 201, r.text
    return [rec["id"] for rec in r.json()["records"]]


async def new_key(client: Client, scope: str) -> str:
    r = await client.post("/v1/api-keys", json={"name": scope, "scopes": [scope]})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


async def token_for(client: Client, ext: str) -> str:
    r = await client.post(f"/v1/customers/{ext}/token", json={})
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


# -- the printable page ----------------------------------------------------------------------


async def test_html_report_shows_purposes_notices_records_and_seqs(
    client: Client, core: Core
) -> None:
    """200 text/html with every purpose, the notice text shown, record ids, audit seqs and
    hashes, the controller, and print styles."""
    ids = await customer_with_consents(client, "h-1")
    r = await client.get("/v1/customers/h-1/consent-proof.html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = html.unescape(r.text)
    for name, spec in core.policy.purposes.items():
        assert f"({name})" in page and spec.titles["en"] in page
    assert core.policy.purposes["analytics"].current_notice.texts["en"] in page
    assert core.policy.purposes["personalization"].current_notice.texts["ja"] in page
    assert core.policy.controller["name"] in page and core.policy.version in page
    rows = await core.db.fetch("SELECT seq, hash FROM audit_log WHERE action = 'consent.recorded'")
    [entry] = rows
    assert f"<td>{entry['seq']}</td>" in r.text and entry["hash"] in r.text
    for record_id in ids:
        assert record_id in page
    assert "@media print" in r.text and "How to verify this report" in page
    assert "<link" not in r.text and "<script src" not in r.text  # self-contained


async def test_html_report_escapes_what_customers_sent(client: Client) -> None:
    """A user agent carrying <script> appears escaped, never as markup."""
    await customer_with_consents(client, "h-2")
    r = await client.get("/v1/customers/h-2/consent-proof.html")
    assert r.status_code == 200, r.text
    assert "<script" not in r.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text


async def test_html_report_at_a_time_before_any_record(client: Client) -> None:
    """The page at a past time shows defaults and the note that the customer did not exist."""
    await customer_with_consents(client, "h-3")
    r = await client.get(
        "/v1/customers/h-3/consent-proof.html", params={"at": "2001-01-01T00:00:00Z"}
    )
    assert r.status_code == 200, r.text
    assert "did not exist yet" in r.text and "No decision was recorded" in r.text
    r = await client.get(
        "/v1/customers/h-3/consent-proof.html", params={"at": "2999-01-01T00:00:00Z"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


# -- receipts ------------------------------------------------------------------------------------


async def test_staff_receipt_verifies_and_names_only_the_pseudonym(
    client: Client, core: Core
) -> None:
    """backend:read gets a receipt whose JWS verifies with the service key; no external id or
    email in it; reading it is audited."""
    record_id = (await customer_with_consents(client, "r-1"))[0]
    key = await new_key(client, "backend:read")
    r = await client.get(f"/v1/customers/r-1/consents/{record_id}/receipt", headers=bearer(key))
    assert r.status_code == 200, r.text
    body = r.json()
    header, claims = jws_verify(body["jws"], KeyRing([core.signing_key.public]))
    assert header["kid"] == core.signing_key.key_id and claims == body["claims"]
    assert body["receipt_id"] == claims["consentReceiptID"]
    subject = await core.db.fetchrow("SELECT id FROM subjects WHERE external_id = 'r-1'")
    assert subject is not None and claims["piiPrincipalId"] == str(subject["id"])
    assert "r-1@example.com" not in r.text and '"r-1"' not in r.text
    [last] = await core.db.fetch("SELECT action, details FROM audit_log ORDER BY seq DESC LIMIT 1")
    assert last["action"] == "consent_receipt.read" and record_id in last["details"]


@pytest.mark.parametrize("scope", ["compliance:read", "backend:write"])
async def test_receipt_scopes(client: Client, scope: str) -> None:
    """Read scopes (and write, which implies read) may fetch a receipt; customers may not."""
    record_id = (await customer_with_consents(client, "r-2"))[0]
    url = f"/v1/customers/r-2/consents/{record_id}/receipt"
    r = await client.get(url, headers=bearer(await new_key(client, scope)))
    assert r.status_code == 200, r.text
    r = await client.get(url, headers=bearer(await token_for(client, "r-2")))
    assert r.status_code == 403, r.text


async def test_receipt_of_another_customer_or_unknown_record_is_404(client: Client) -> None:
    """A record id is only found under its own customer; a malformed one is a 422."""
    record_id = (await customer_with_consents(client, "r-3"))[0]
    await customer_with_consents(client, "r-4")
    for url, status in (
        (f"/v1/customers/r-4/consents/{record_id}/receipt", 404),
        (f"/v1/customers/r-3/consents/{uuid.uuid4()}/receipt", 404),
        (f"/v1/customers/nobody/consents/{record_id}/receipt", 404),
        ("/v1/customers/r-3/consents/not-a-uuid/receipt", 422),
    ):
        r = await client.get(url)
        assert r.status_code == status, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"


async def test_customer_gets_own_receipt_only(client: Client, core: Core) -> None:
    """/v1/me: the customer's own record gives the same receipt id; another's is 404; an API key
    is refused; the customer's own read is not audited."""
    mine = (await customer_with_consents(client, "m-1"))[0]
    theirs = (await customer_with_consents(client, "m-2"))[0]
    me = bearer(await token_for(client, "m-1"))
    staff = await client.get(f"/v1/customers/m-1/consents/{mine}/receipt")
    before = await core.db.fetch("SELECT seq FROM audit_log")
    r = await client.get(f"/v1/me/consents/{mine}/receipt", headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["receipt_id"] == staff.json()["receipt_id"]
    assert len(await core.db.fetch("SELECT seq FROM audit_log")) == len(before)
    jws_verify(r.json()["jws"], KeyRing([core.signing_key.public]))
    r = await client.get(f"/v1/me/consents/{theirs}/receipt", headers=me)
    assert r.status_code == 404, r.text
    r = await client.get(f"/v1/me/consents/{mine}/receipt")  # the admin key
    assert r.status_code == 403, r.text


async def test_receipt_routes_need_a_credential(client: Client) -> None:
    """No credential: 401 before anything else, even with a malformed record id."""
    for url in (
        "/v1/customers/x-1/consents/not-a-uuid/receipt",
        f"/v1/me/consents/{uuid.uuid4()}/receipt",
        "/v1/customers/x-1/consent-proof",
        "/v1/customers/x-1/consent-proof.html",
    ):
        r = await client.get(url, headers={"Authorization": ""})
        assert r.status_code == 401, (url, r.text)
        assert re.match(r"application/problem\+json", r.headers["content-type"])
