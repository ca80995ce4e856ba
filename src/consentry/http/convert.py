"""Domain values to wire schemas."""

from __future__ import annotations

from typing import Any

from consentry.access.keys import ApiKeyInfo
from consentry.customers.records import Customer
from consentry.domain.consent import ConsentState
from consentry.domain.decision import Verdict
from consentry.domain.purposes import Policy, Purpose
from consentry.http import schemas as s
from consentry.ledger.consents import LedgerRecord, Recorded
from consentry.ledger.events import StoredEvent


def customer(c: Customer) -> s.CustomerOut:
    return s.CustomerOut(
        c.id,
        c.external_id,
        c.region,
        c.identities,
        c.attributes,
        c.created_at,
        c.updated_at,
        c.version,
        c.previously_erased_at,
    )


def record(r: LedgerRecord) -> s.LedgerRecordOut:
    return s.LedgerRecordOut(
        r.id,
        r.purpose,
        r.channel,
        r.decision,
        r.legal_basis,
        r.notice_version,
        r.notice_hash,
        r.language,
        r.policy_version,
        r.source,
        r.actor,
        r.recorded_at,
        r.expires_at,
        r.evidence,
    )


def recorded(r: Recorded) -> s.Recorded:
    return s.Recorded(
        records=[record(x) for x in r.records],
        confirmations=[
            s.ConfirmationOut(c.purpose, c.channel, c.token, c.expires_at) for c in r.confirmations
        ],
        gpc=r.gpc,  # type: ignore[arg-type]
    )


def state(x: ConsentState) -> s.ConsentStateOut:
    return s.ConsentStateOut(
        x.purpose,
        x.channel,
        x.decision.value,
        x.legal_basis,
        x.notice_version,
        x.source,
        x.record_id,
        x.recorded_at,
        x.expires_at,
    )


def verdict(v: Verdict) -> s.CheckOut:
    return s.CheckOut(
        "allow" if v.allowed else "deny",
        v.purpose,
        v.channel,
        v.legal_basis,
        [s.ReasonOut(r.code, r.message) for r in v.reasons],
    )


def event(e: StoredEvent) -> s.EventOut:
    return s.EventOut(e.id, e.name, e.occurred_at, e.received_at, e.properties)


def api_key(k: ApiKeyInfo) -> s.ApiKeyOut:
    return s.ApiKeyOut(k.id, k.name, k.scopes, k.created_by, k.created_at, k.revoked_at)


def preferences(doc: dict[str, Any]) -> s.PreferencesOut:
    return s.PreferencesOut(
        doc.get("channels", {}),
        doc.get("topics", {}),
        doc.get("quiet_hours"),
        doc.get("language"),
        doc.get("frequency_cap_per_week"),
    )


def purpose(policy: Policy, p: Purpose, language: str) -> s.PurposeOut:
    notice = p.current_notice
    return s.PurposeOut(
        name=p.name,
        title=p.titles.get(language, p.name),
        legal_basis=p.legal_basis.value,
        categories=list(p.categories),
        channels=list(p.channels),
        double_opt_in=p.double_opt_in,
        expires_after_days=p.expires_after_days,
        notice=s.NoticeOut(
            notice.version,
            language,
            notice.texts[language],
            notice.content_hash(language),
            notice.published,
        ),
        notice_history=[n.version for n in p.notices],
    )
