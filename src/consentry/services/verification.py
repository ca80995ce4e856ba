"""Proving who you are by email, to file a data-subject request without a customer token.

A customer asks for a code with their email address; a six-digit code goes out through the
`email` channel a plugin registers (first-party: SMTP). The code works once, for 15 minutes,
and for five attempts; the right one is exchanged for a short customer token, with which the
customer files their request (`/v1/me/requests`). The answer to "send a code" is the same
whether or not the address is known, so it tells no one who is a customer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from uuid import UUID

import structlog

from consentry.crypto.blind_index import blind_index
from consentry.plugins.types import Message
from consentry.services.access import CustomerToken, customer_token_in
from consentry.services.core import Core
from consentry.services.errors import Invalid, Unauthorized, Unavailable
from consentry.services.principals import Principal
from consentry.storage.writer import WriteTx

CODE_MINUTES = 15
MAX_ATTEMPTS = 5
TOKEN_SECONDS = 900
PURPOSE = "dsr_verification"  # a legal obligation (GDPR Art. 12(6)), not a consent purpose
log = structlog.get_logger("consentry.verification")


def code_hash(core: Core, subject_id: UUID, code: str) -> str:
    message = f"{subject_id}:{code}".encode()
    return hmac.new(core.secrets.token_key, message, hashlib.sha256).hexdigest()


async def _subject(core: Core, email: str) -> UUID | None:
    try:
        digest = blind_index(core.secrets.index_key, "email", email)
    except ValueError as exc:
        raise Invalid(f"email is not valid: {exc}", field="email") from None
    row = await core.db.fetchrow("SELECT id FROM subjects WHERE email_index = ?", digest)
    return UUID(str(row["id"])) if row else None


async def send_code(core: Core, email: str) -> None:
    """Send a code if this address is a customer's; say nothing either way."""
    found = core.plugins.registry.channels.get("email")
    if found is None:
        raise Unavailable("no email channel is installed, so no code can be sent")
    subject_id = await _subject(core, email)
    if subject_id is None:
        return
    code = f"{secrets.randbelow(1_000_000):06d}"

    async def job(tx: WriteTx) -> None:
        await tx.execute(
            "UPDATE verifications SET used_at = ? WHERE subject_id = ? AND used_at IS NULL",
            tx.now,
            subject_id,
        )  # a new code replaces any earlier one
        await tx.execute(
            "INSERT INTO verifications (id, subject_id, code_hash, created_at, expires_at,"
            " attempts) VALUES (?, ?, ?, ?, ?, 0)",
            uuid.uuid4(),
            subject_id,
            code_hash(core, subject_id, code),
            tx.now,
            tx.now + timedelta(minutes=CODE_MINUTES),
        )
        tx.audit("system:verification", "verification.code_sent", f"subject:{subject_id}")

    await core.writer.submit(job)
    _, channel = found
    body = (
        f"Your code is {code}. It works once, for {CODE_MINUTES} minutes.\n\n"
        "Someone (we hope you) asked to see or erase the data we hold about you. If it was not"
        " you, ignore this message: nothing happens without the code."
    )
    try:
        await channel.send(Message(subject_id, PURPOSE, "Your verification code", body, email))
    except Exception as exc:  # the customer can ask again; the operator sees why
        # the exception's text may name the address (SMTPRecipientsRefused does): type only
        log.error("verification.send_failed", error=type(exc).__name__)
        raise Unavailable("the code could not be sent; try again in a few minutes") from None


async def confirm(core: Core, email: str, code: str) -> CustomerToken:
    """A customer token for the right code; a wrong one uses up an attempt."""
    wrong = Unauthorized(
        "wrong or expired code; ask for a new one if it is more than 15 minutes old"
    )
    subject_id = await _subject(core, email)
    if subject_id is None or not code.isdigit() or len(code) != 6:
        raise wrong
    given = code_hash(core, subject_id, code)

    async def job(tx: WriteTx) -> CustomerToken | str:
        row = await tx.fetchrow(
            "SELECT id, code_hash, attempts FROM verifications WHERE subject_id = ?"
            " AND used_at IS NULL AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
            subject_id,
            tx.now,
        )
        if row is None:
            return "expired"
        if hmac.compare_digest(row["code_hash"], given):
            await tx.execute("UPDATE verifications SET used_at = ? WHERE id = ?", tx.now, row["id"])
            tx.audit("system:verification", "verification.confirmed", f"subject:{subject_id}")
            actor = Principal("system", "verification")
            return customer_token_in(core, tx, subject_id, actor, TOKEN_SECONDS)
        attempts = int(row["attempts"]) + 1
        burnt = tx.now if attempts >= MAX_ATTEMPTS else None
        await tx.execute(
            "UPDATE verifications SET attempts = ?, used_at = ? WHERE id = ?",
            attempts,
            burnt,
            row["id"],
        )
        tx.audit("system:verification", "verification.failed", f"subject:{subject_id}")
        return "burnt" if burnt else f"{MAX_ATTEMPTS - attempts} left"

    outcome = await core.writer.submit(job)
    if isinstance(outcome, CustomerToken):
        return outcome
    if outcome == "burnt":
        raise Unauthorized("wrong code, and that was the last attempt: ask for a new code")
    if outcome == "expired":
        raise wrong
    raise Unauthorized(f"wrong code; {outcome.split()[0]} attempts left")
