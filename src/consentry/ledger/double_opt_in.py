"""Double opt-in: a grant that needs it is recorded 'pending' with a single-use confirmation
token; confirming it in time records the grant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.tokens import hash_secret, new_secret
from consentry.domain.consent import Decision, Source, state_key
from consentry.domain.errors import Gone, NotFound
from consentry.ledger import reactions
from consentry.ledger.records import LedgerRecord, append, change, new_record
from consentry.storage.writer import WriteTx


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    purpose: str
    channel: str
    token: str
    expires_at: datetime


async def issue_confirmation(
    core: Core, tx: WriteTx, subject_id: UUID, rec: LedgerRecord
) -> PendingConfirmation:
    """A confirmation token for the pending record `rec`; only its hash is stored."""
    token, digest = new_secret()
    expires = tx.now + timedelta(hours=core.policy.double_opt_in_ttl_hours)
    await tx.execute(
        "INSERT INTO confirmations (token_hash, subject_id, purpose, channel, notice_version,"
        " language, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        digest,
        subject_id,
        rec.purpose,
        rec.channel,
        rec.notice_version,
        rec.language,
        tx.now,
        expires,
    )
    return PendingConfirmation(rec.purpose, rec.channel, token, expires)


async def confirm(core: Core, token: str) -> LedgerRecord:
    """Turn a pending double opt-in into a grant; the token works once, before it expires."""
    digest = hash_secret(token)

    async def job(tx: WriteTx) -> tuple[UUID, LedgerRecord]:
        row = await tx.fetchrow("SELECT * FROM confirmations WHERE token_hash = ?", digest)
        if row is None:
            raise NotFound("this confirmation link is not valid")
        if row["used_at"] is not None:
            raise Gone("this confirmation link was already used")
        if row["expires_at"] <= tx.now:
            raise Gone("this confirmation link has expired; ask for a new one")
        subject_id = UUID(str(row["subject_id"]))
        current = await tx.fetchrow(
            "SELECT decision FROM consent_state WHERE key = ?",
            state_key(subject_id, row["purpose"], row["channel"]),
        )
        if current is None or current["decision"] != Decision.PENDING.value:
            raise Gone("this confirmation link no longer applies: the decision changed since")
        actor = Principal("customer", str(subject_id))
        rec = new_record(
            core,
            core.policy.purposes[row["purpose"]],
            Decision.GRANTED,
            Source.DOUBLE_OPT_IN,
            {},
            actor,
            tx.stamp(),
            channel=row["channel"],
            notice_version=row["notice_version"],
            language=row["language"],
        )
        await append(tx, subject_id, rec)
        await tx.execute(
            "UPDATE confirmations SET used_at = ? WHERE token_hash = ?", tx.now, digest
        )
        tx.audit(
            actor.actor,
            "consent.confirmed",
            f"subject:{subject_id}",
            purpose=rec.purpose,
            channel=rec.channel,
            record=str(rec.id),
        )
        return subject_id, rec

    subject_id, rec = await core.writer.submit(job)
    await reactions.consents_changed(core, [change(subject_id, rec)])
    return rec
