"""Signed consent receipts on both engines: Kantara CR v1.1 claims in a JWS that verifies with
the service's public key, fails when tampered with, and verifies offline with the CLI helper."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from consentry.core.principals import SYSTEM, Principal
from consentry.core.runtime import Core
from consentry.crypto.signing import (
    KeyRing,
    SignatureError,
    SigningKey,
    b64url,
    b64url_decode,
    jws_sign,
    jws_verify,
)
from consentry.customers.records import CustomerUpsert, upsert
from consentry.domain.consent import Decision, Source
from consentry.domain.errors import NotFound
from consentry.ledger import consents
from consentry.ledger.cli import verify_receipt
from consentry.ledger.consents import DecisionIn, RecordRequest
from consentry.ledger.receipts import RECEIPT_VERSION, receipt_for, receipt_id
from consentry.ledger.records import LedgerRecord

STAFF = Principal("key", "k-test")


async def customer(core: Core, ext: str, region: str = "EU") -> UUID:
    c, _ = await upsert(
        core,
        CustomerUpsert(ext, region, identities={"email": f"{ext}@customers.test"}),
        SYSTEM,
    )
    return c.id


async def grant(
    core: Core, subject_id: UUID, purpose: str, decision: Decision = Decision.GRANTED, **kw: Any
) -> LedgerRecord:
    out = await consents.record_for(
        core,
        subject_id,
        "EU",
        RecordRequest([DecisionIn(purpose, decision, **kw)], source=Source.PREFERENCE_CENTER),
        SYSTEM,
    )
    return out.records[0]


def ring(core: Core) -> KeyRing:
    return KeyRing([core.signing_key.public])


async def test_claims_carry_the_kantara_fields(core: Core) -> None:
    """Version, jurisdiction, time, method, controller, policy URL and the purpose with consent
    type, data categories, notice version and hash; signed with the service key."""
    sid = await customer(core, "ext-4711-ann")
    rec = await grant(core, sid, "personalization", language="ja")
    receipt = await receipt_for(core, sid, rec.id)
    header, claims = jws_verify(receipt.jws, ring(core))
    assert claims == receipt.claims and header["kid"] == core.signing_key.key_id
    controller = core.policy.controller
    assert claims["version"] == RECEIPT_VERSION == "KI-CR-v1.1.0"
    assert (claims["jurisdiction"], claims["regulation"]) == ("EU", "GDPR")
    assert claims["consentTimestamp"] == int(rec.recorded_at.timestamp())
    assert claims["collectionMethod"] == "preference_center" and claims["language"] == "ja"
    assert claims["consentReceiptID"] == receipt.receipt_id == receipt_id(rec.id)
    assert claims["piiPrincipalId"] == str(sid)
    assert claims["piiControllers"] == [
        {
            "piiController": controller["name"],
            "contact": controller["contact"],
            "piiControllerUrl": controller["policy_url"],
        }
    ]
    assert claims["policyUrl"] == claims["iss"] == controller["policy_url"]
    assert claims["policyVersion"] == rec.policy_version == core.policy.version
    assert isinstance(claims["iat"], int)
    [service] = claims["services"]
    assert service["service"] == controller["name"]
    [p] = service["purposes"]
    spec = core.policy.purposes["personalization"]
    assert p["purpose"] == spec.titles["ja"] and p["purposeCategory"] == ["personalization"]
    assert (p["consentType"], p["decision"], p["termination"]) == (
        "EXPLICIT",
        "granted",
        "withdrawal",
    )
    assert p["piiCategory"] == list(spec.categories)
    assert (p["noticeVersion"], p["noticeHash"]) == (rec.notice_version, rec.notice_hash)
    assert p["primaryPurpose"] is False and p["thirdPartyDisclosure"] is False
    assert claims["sensitive"] is True and claims["spiCat"] == ["identity"]
    text = json.dumps(claims) + b64url_decode(receipt.jws.split(".")[1]).decode()
    assert "ext-4711" not in text and "customers.test" not in text


async def test_basis_disclosure_and_jurisdiction_follow_the_record(core: Core) -> None:
    """A legitimate-interest objection is not EXPLICIT; sale/share is a third-party disclosure;
    a pending double opt-in terminates on withdrawal; the jurisdiction is the customer's region
    when the record was made."""
    sid = await customer(core, "k-2", region="US-CA")
    objection = await grant(core, sid, "product_updates", Decision.WITHDRAWN)
    await upsert(core, CustomerUpsert("k-2", "EU"), SYSTEM)
    li = (await receipt_for(core, sid, objection.id)).claims
    assert (li["jurisdiction"], li["regulation"]) == ("US-CA", "CCPA")
    [p] = li["services"][0]["purposes"]
    assert (p["consentType"], p["decision"]) == ("legitimate_interest", "withdrawn")

    share = (await receipt_for(core, sid, (await grant(core, sid, "sale_or_share")).id)).claims
    assert (share["jurisdiction"], share["regulation"]) == ("EU", "GDPR")
    [p] = share["services"][0]["purposes"]
    assert (p["thirdPartyDisclosure"], p["consentType"]) == (True, "EXPLICIT")

    pending = await grant(core, sid, "marketing_email", channel="email")
    [p] = (await receipt_for(core, sid, pending.id)).claims["services"][0]["purposes"]
    assert (p["decision"], p["termination"], p["channel"]) == ("pending", "withdrawal", "email")


async def test_granted_with_expiry_has_a_termination_time(core: Core) -> None:
    """A grant on a purpose with expires_after_days ends at its expiry time."""
    sid = await customer(core, "k-3")
    rec = await grant(core, sid, "marketing_email", channel="email")
    confirmed = await consents.record_for(
        core,
        sid,
        "EU",
        RecordRequest(
            [DecisionIn("marketing_email", Decision.GRANTED, "email")], source=Source.DOUBLE_OPT_IN
        ),
        SYSTEM,
    )
    [done] = confirmed.records
    assert rec.decision == "pending" and done.expires_at is not None
    [p] = (await receipt_for(core, sid, done.id)).claims["services"][0]["purposes"]
    assert datetime.fromisoformat(p["termination"]) == done.expires_at


async def test_receipt_id_is_stable_and_records_stay_with_their_customer(core: Core) -> None:
    """Issuing again gives the same receipt id; another customer's or an unknown record: 404."""
    a, b = await customer(core, "k-4"), await customer(core, "k-5")
    rec = await grant(core, a, "analytics")
    first, again = await receipt_for(core, a, rec.id), await receipt_for(core, a, rec.id)
    assert first.receipt_id == again.receipt_id
    with pytest.raises(NotFound):
        await receipt_for(core, b, rec.id)
    with pytest.raises(NotFound):
        await receipt_for(core, a, uuid4())


async def test_staff_read_is_audited(core: Core) -> None:
    """An API key's receipt read adds one consent_receipt.read entry naming only the record."""
    sid = await customer(core, "k-6")
    rec = await grant(core, sid, "analytics")
    before = len(await core.db.fetch("SELECT seq FROM audit_log"))
    await receipt_for(core, sid, rec.id)
    assert len(await core.db.fetch("SELECT seq FROM audit_log")) == before
    await receipt_for(core, sid, rec.id, STAFF)
    rows = await core.db.fetch("SELECT * FROM audit_log ORDER BY seq")
    [entry] = rows[before:]
    assert (entry["action"], entry["actor"], entry["target"]) == (
        "consent_receipt.read",
        "key:k-test",
        f"subject:{sid}",
    )
    assert json.loads(entry["details"]) == {"record": str(rec.id)}


# -- tampering -----------------------------------------------------------------------------------


def _tamper_payload(jws: str) -> str:
    header, payload, signature = jws.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["services"][0]["purposes"][0]["decision"] = "granted"
    claims["piiPrincipalId"] = str(uuid4())
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


def _tamper_signature(jws: str) -> str:
    header, payload, signature = jws.split(".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    return ".".join([header, payload, b64url(bytes(raw))])


async def test_tampered_or_foreign_receipts_fail(core: Core) -> None:
    """A changed payload or signature does not verify; another key's receipt names an unknown
    kid."""
    sid = await customer(core, "k-7")
    receipt = await receipt_for(
        core, sid, (await grant(core, sid, "analytics", Decision.DENIED)).id
    )
    for bad in (_tamper_payload(receipt.jws), _tamper_signature(receipt.jws)):
        with pytest.raises(SignatureError, match="does not verify"):
            jws_verify(bad, ring(core))
    other = jws_sign(receipt.claims, SigningKey(os.urandom(32)))
    with pytest.raises(SignatureError, match="no public key with id"):
        jws_verify(other, ring(core))


# -- offline verification (consentry receipt verify) -------------------------------------------


@pytest.fixture
async def files(core: Core, tmp_path: Path) -> dict[str, Path]:
    sid = await customer(core, "k-8")
    receipt = await receipt_for(core, sid, (await grant(core, sid, "analytics")).id)
    paths = {
        "good": receipt.jws,
        "answer": json.dumps(
            {"receipt_id": receipt.receipt_id, "jws": receipt.jws, "claims": receipt.claims}
        ),
        "payload": _tamper_payload(receipt.jws),
        "signature": _tamper_signature(receipt.jws),
        "foreign": jws_sign(receipt.claims, SigningKey(os.urandom(32))),
        "malformed": "not.a-jws",
        "jwks": json.dumps(ring(core).jwks()),
        "jwk": json.dumps(core.signing_key.public.jwk()),
        "pem": core.signing_key.public.pem(),
        "other_jwks": json.dumps(KeyRing([SigningKey(os.urandom(32)).public]).jwks()),
        "garbage_keys": "hello",
    }
    out = {}
    for name, text in paths.items():
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text + "\n")
    out["id"] = Path(receipt.receipt_id)
    return out


async def test_cli_accepts_a_good_receipt_with_any_key_format(files: dict[str, Path]) -> None:
    """A good receipt, bare or as the API's JSON answer, verifies with a JWK Set, a JWK or PEM
    and the message says what it records."""
    for receipt in ("good", "answer"):
        for keys in ("jwks", "jwk", "pem"):
            code, message = verify_receipt(files[receipt], files[keys])
            assert code == 0, message
            assert message.startswith("VALID") and str(files["id"]) in message
            assert "analytics: granted" in message and "consent time 20" in message


@pytest.mark.parametrize(
    ("receipt", "keys", "code", "words"),
    [
        ("payload", "jwks", 1, "bad signature"),
        ("signature", "jwks", 1, "bad signature"),
        ("foreign", "jwks", 1, "not in"),
        ("good", "other_jwks", 1, "not in"),
        ("malformed", "jwks", 1, "malformed"),
        ("good", "garbage_keys", 2, "neither PEM nor JSON"),
        ("good", "missing", 2, "cannot read"),
    ],
)
async def test_cli_rejects_with_a_precise_reason(
    files: dict[str, Path], tmp_path: Path, receipt: str, keys: str, code: int, words: str
) -> None:
    """Tampered, foreign, malformed: exit 1 and why; an unusable key file: exit 2."""
    keys_path = files.get(keys, tmp_path / "missing.json")
    got, message = verify_receipt(files[receipt], keys_path)
    assert (got, words in message) == (code, True), message
    assert not message.startswith("VALID")
