"""Examples for the OpenAPI document, generated from the schemas: one table of field values.

`example_for(schema, components)` walks a schema (following `$ref`s into components) and builds
a value: a field named in FIELDS (by "Component.field" first, then by field name) takes that
value; a default, an enum, a format or the type gives the rest. Every property with a value is
shown, so an example documents every field (an optional one whose value is null is left out).
Tests validate each example against its schema, so a table entry that stops fitting its field
fails there.
"""

from __future__ import annotations

from typing import Any

UUID = "3f2b9c1e-8d4a-4e7b-9a61-2c5d8e0f1a23"
TIME = "2026-01-31T09:30:00Z"
HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
JWS = "eyJhbGciOiJFZERTQSIsImtpZCI6ImstMjAyNiJ9.eyJzdWIiOiIzZjJiOWMxZSJ9.c2lnbmF0dXJl"
FILTER = {
    "and": [
        {"attr": "plan", "op": "=", "value": "pro"},
        {"attr": "upgraded_at", "op": "within_days", "value": 30},
    ]
}

# Values by field name, or by "Component.field" where a name means different things.
FIELDS: dict[str, Any] = {
    "external_id": "cus_4711",
    "external_ids": ["cus_4711", "cus_4712"],
    "region": "EU",
    "identities": {"email": "ada@example.com"},
    "attributes": {"plan": "pro", "first_name": "Ada"},
    "purpose": "marketing_email",
    "channel": "email",
    "notice_version": "1",
    "language": "en",
    "legal_basis": "consent",
    "policy_version": HASH[:16],
    "actor": "key:3f2b9c1e",
    "target": "subject:3f2b9c1e-8d4a-4e7b-9a61-2c5d8e0f1a23",
    "action": "consent.recorded",
    "title": "Marketing emails",
    "categories": ["contact", "profile"],
    "hooks": ["register_routes", "register_capabilities"],
    "capabilities": ["segments.membership"],
    "created_by": "key:3f2b9c1e",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "reason": "support ticket 4711",
    "ip": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "url": "https://shop.example.com/preferences",
    "scopes": ["backend:write", "backend:read"],
    "ttl_seconds": 3600,
    "token": "cfm_Jx4Yq0nW8e2rVZkLmT7s",
    "key": "csk_live_Jx4Yq0nW8e2rVZkLmT7sQp3d",
    "code": "0123456789",
    "PurposeOut.channels": ["email", "sms"],
    "PreferencesPatch.channels": {"email": True, "sms": False},
    "PreferencesOut.channels": {"email": True, "sms": False},
    "topics": {"newsletter": True},
    "frequency_cap_per_week": 3,
    "start": "22:00",
    "end": "07:00",
    "timezone": "Europe/Berlin",
    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
    "properties": {"amount": 49.5, "currency": "EUR"},
    "regulation": "GDPR",
    "note": "Identity checked by a signed-in session",
    "verified_by": "signed-in session",
    "method": "signed-in session",
    "filter": FILTER,
    "body": "<p>Hello {{ customer.first_name }}</p>",
    "subject": "Welcome",
    "hash": HASH,
    "prev_hash": HASH,
    "head_hash": HASH,
    "root": HASH,
    "entry_hash": HASH,
    "content_hash": HASH,
    "notice_hash": HASH,
    "proof": [HASH],
    "signature": "c2lnbmF0dXJlLWJhc2U2NHVybA",
    "jws": JWS,
    "key_id": "k-2026-01",
    "current": "k-2026-01",
    "next_cursor": None,
    "due": "2026-02-28",
    "respond_by": "2026-02-28",
    "detail": "a field or parameter is not valid",
    "acknowledge_by": "2026-02-14",
    "extended_to": None,
    "days_left": 28,
    "overdue": False,
    "acknowledgement_overdue": False,
    "LedgerRecordOut.decision": "granted",
    "ConsentStateOut.decision": "granted",
    "ProofRecord.decision": "granted",
    "LedgerRecordOut.source": "api",
    "ConsentStateOut.source": "api",
    "ProofRecord.source": "api",
    "capability": "templates.render",
    "kind": "html",
    "TemplateOut.purposes": ["marketing_email"],
    "TemplatePreviewOut.purposes": ["marketing_email"],
    "tree_size": 1024,
    "seq": 1017,
    "leaf_index": 1016,
    "from_size": 512,
    "to_size": 1024,
    "message": "consent granted under notice 1",
    "PluginOut.version": "0.1.0",
    "PluginOut.name": "segments",
    "published": "2026-01-01",
    "notice_history": ["1"],
    "decided_by": "consent",
    "notice_in_force": "1",
    "ConsentProofOut.notes": [],
    "RequestOut.channel": "api",
    "RequestOut.notes": {"received": "Asked by email on 2026-01-31"},
    "missing": [],
    "withheld": [],
    "failures": 0,
    "receipt_id": UUID,
    "pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n",
    "expires_after_days": 365,
    "accepted": 1,
    "count": 1250,
    "ApiKeyIn.name": "billing backend",
    "ApiKeyOut.name": "billing backend",
    "ApiKeyOut.id": "3f2b9c1e",
    "EventIn.name": "payment_failed",
    "BatchEventIn.name": "payment_failed",
    "EventOut.name": "payment_failed",
    "SegmentIn.name": "Pro customers",
    "SegmentOut.name": "Pro customers",
    "TemplateIn.name": "Welcome email",
    "TemplateOut.name": "Welcome email",
    "VerificationIn.email": "someone@example.com",  # not a customer's: nothing is sent
    "ChatSendIn.text": "Your order has shipped.",
    "CustomerSearch.phone": None,  # one of email or phone
    "RequestIn.note": None,
    "Problem.field": None,
}
_FORMATS = {"date-time": TIME, "date": "2026-01-31", "uuid": UUID, "email": "ada@example.com"}
_MAX_DEPTH = 30  # a guard against recursive schemas without a FIELDS entry


def example_for(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    return _value(schema, components, None, 0)


def _value(
    schema: dict[str, Any], components: dict[str, Any], owner: str | None, depth: int
) -> Any:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _value(components[name], components, name, depth + 1)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            rest = {k: v for k, v in schema.items() if k != key}
            return _value({**rest, **options[0]}, components, owner, depth)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > _MAX_DEPTH:
            return {}
        required = set(schema.get("required", []))
        shown = {
            field: _field(owner, field, sub, components, depth)
            for field, sub in schema.get("properties", {}).items()
        }
        return {k: v for k, v in shown.items() if v is not None or k in required}
    if kind == "array":
        item = _value(schema.get("items", {}), components, owner, depth + 1)
        return [item] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return _FORMATS.get(schema.get("format", ""), "text")
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 12.5
    if kind == "boolean":
        return True
    return None


def _field(owner: str | None, field: str, schema: dict[str, Any], components: dict[str, Any],
           depth: int) -> Any:  # fmt: skip
    for key in (f"{owner}.{field}", field):
        if key in FIELDS:
            return FIELDS[key]
    return _value(schema, components, owner, depth + 1)
