"""Proving who you are by email, to file a data-subject request without a customer token.

A customer asks for a code with their email address; a ten-digit code goes out through the
`email` channel a plugin registers (first-party: SMTP). The code works once, for 15 minutes,
and for five attempts; the right one is exchanged for a short customer token, with which the
customer files their request (`/v1/me/requests`).

Nothing here tells anyone who is a customer. Both calls answer alike, in status, body and work
done, for every address: a code row is written (and a wrong code counted) by the address's
blind index whether or not a customer has it, with its audit entry (naming the customer, or
only the code row when nobody has the address), and the email goes out after the answer, at a
random moment within a few seconds, from a task the core owns, so SMTP latency never shows.

Limits, counted in the database (so they hold across restarts and instances): codes per address
and per client per hour, wrong codes per address and per client per day. Past a limit every
answer is a 429 with the seconds until the window frees, the right code included: a lockout.
With the defaults (10 wrong codes per address per day, codes of 10^10) a guesser's odds of
reaching one address within a year are at most 3,650 / 10^10 (README: data-subject requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import structlog

from consentry.access import CustomerToken, customer_token_in
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.crypto.blind_index import blind_index
from consentry.domain.errors import Invalid, TooManyRequests, Unauthorized, Unavailable
from consentry.host import Plugins
from consentry.plugins.types import Channel, Message
from consentry.storage.writer import WriteTx

CODE_DIGITS = 10
CODE_MINUTES = 15
MAX_ATTEMPTS = 5
TOKEN_SECONDS = 900
PURPOSE = "dsr_verification"  # a legal obligation (GDPR Art. 12(6)), not a consent purpose
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NOT_CONFIGURED = "email channel not configured: customer verification by email answers 503"
SENT = (
    "if a customer has this email address, a code is on its way; it works once, for"
    f" {CODE_MINUTES} minutes"
)
WRONG = (
    "the code is wrong, used or expired: check it, or ask for a new one (a code works once,"
    f" for {CODE_MINUTES} minutes and {MAX_ATTEMPTS} attempts)"
)
log = structlog.get_logger("consentry.verification")
_jitter = secrets.SystemRandom()


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `most` events of `kind` for `key` within `window`; `what` names it for people."""

    kind: str
    key: str
    most: int
    window: timedelta
    what: str


def email_channel(plugins: Plugins) -> Channel | None:
    """The email channel, if one is installed and configured."""
    found = plugins.registry.channels.get("email")
    return found[1] if found is not None and found[1].can_send() else None


def warn_if_unavailable(plugins: Plugins) -> None:
    """Say at start that verification will answer 503, rather than at the first customer."""
    if email_channel(plugins) is None:
        log.warning(NOT_CONFIGURED)


def address_index(core: Core, email: str) -> str:
    try:
        return blind_index(core.secrets.index_key, "email", email)
    except ValueError as exc:
        raise Invalid(f"email is not valid: {exc}", field="email") from None


def client_index(core: Core, client: str) -> str:
    """The client's address as a keyed hash: the limits count it, nothing stores it in clear."""
    return blind_index(core.secrets.index_key, "client", client)


def code_hash(core: Core, address: str, code: str) -> str:
    message = f"{address}:{code}".encode()
    return hmac.new(core.secrets.token_key, message, hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


async def send_code(core: Core, email: str, client: str) -> None:
    """Store a code for this address and, if it is a customer's, email it after answering."""
    channel = email_channel(core.plugins)
    if channel is None:
        raise Unavailable(
            "verification by email is not available: this service has no email channel"
            " configured. Ask the company to verify you another way"
        )
    address = address_index(core, email)
    row = await core.db.fetchrow("SELECT id FROM subjects WHERE email_index = ?", address)
    subject_id = UUID(str(row["id"])) if row else None
    code = new_code()
    hashed = code_hash(core, address, code)
    limits = _code_limits(core, address, client)

    async def job(tx: WriteTx) -> TooManyRequests | None:
        refused = await _refusal(tx, limits)
        if refused is not None:
            return refused
        await _count(tx, limits)
        await tx.execute(
            "UPDATE verification_codes SET used_at = ? WHERE address_index = ? AND used_at IS NULL",
            tx.now,
            address,
        )  # a new code replaces any earlier one
        code_id = uuid.uuid4()
        await tx.execute(
            "INSERT INTO verification_codes (id, address_index, subject_id, code_hash, created_at,"
            " expires_at, attempts) VALUES (?, ?, ?, ?, ?, ?, 0)",
            code_id,
            address,
            subject_id,
            hashed,
            tx.now,
            tx.now + timedelta(minutes=CODE_MINUTES),
        )
        if subject_id is not None:
            tx.audit("system:verification", "verification.code_sent", f"subject:{subject_id}")
        else:  # an entry all the same: the same work, and a trace of who is tried
            tx.audit("system:verification", "verification.code_not_sent", f"verification:{code_id}")
        return None

    refused = await core.writer.submit(job)
    if refused is not None:
        raise refused
    if subject_id is not None:
        delay = _jitter.uniform(0, core.settings.verification_send_jitter_seconds)
        core.background.spawn(_deliver(channel, subject_id, email, code, delay))


async def _deliver(channel: Channel, subject_id: UUID, email: str, code: str, delay: float) -> None:
    """Send the code a random moment after answering: the sending's load on the process then
    lines up with no request of the asker's (a customer's address costs an email, nobody's not)."""
    await asyncio.sleep(delay)
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


async def confirm(core: Core, email: str, code: str, client: str) -> CustomerToken:
    """A customer token for the right code; a wrong one uses up an attempt and counts."""
    address = address_index(core, email)
    given = code_hash(core, address, code)
    limits = _failure_limits(core, address, client)

    async def job(tx: WriteTx) -> CustomerToken | TooManyRequests | None:
        refused = await _refusal(tx, limits)
        if refused is not None:
            return refused
        row = await tx.fetchrow(
            "SELECT id, subject_id, code_hash, attempts FROM verification_codes"
            " WHERE address_index = ? AND used_at IS NULL AND expires_at > ?"
            " ORDER BY created_at DESC LIMIT 1",
            address,
            tx.now,
        )
        right = row is not None and hmac.compare_digest(row["code_hash"], given)
        if row is not None and right and row["subject_id"] is not None:
            subject_id = UUID(str(row["subject_id"]))
            await tx.execute(
                "UPDATE verification_codes SET used_at = ? WHERE id = ?", tx.now, row["id"]
            )
            tx.audit("system:verification", "verification.confirmed", f"subject:{subject_id}")
            actor = Principal("system", "verification")
            return customer_token_in(core, tx, subject_id, actor, TOKEN_SECONDS)
        await _count(tx, limits)
        if row is None:
            tx.audit("system:verification", "verification.failed", "verification:none")
        else:
            await _use_attempt(tx, row)
        return None

    outcome = await core.writer.submit(job)
    if isinstance(outcome, CustomerToken):
        return outcome
    if outcome is not None:
        raise outcome
    raise Unauthorized(WRONG)


async def _use_attempt(tx: WriteTx, row: dict[str, object]) -> None:
    """A wrong code: one attempt fewer, and the code burnt at the last one."""
    attempts = int(str(row["attempts"])) + 1
    burnt = tx.now if attempts >= MAX_ATTEMPTS else None
    await tx.execute(
        "UPDATE verification_codes SET attempts = ?, used_at = ? WHERE id = ?",
        attempts,
        burnt,
        row["id"],
    )
    subject_id = row["subject_id"]
    target = f"subject:{subject_id}" if subject_id is not None else f"verification:{row['id']}"
    tx.audit("system:verification", "verification.failed", target)


def _code_limits(core: Core, address: str, client: str) -> tuple[Limit, ...]:
    settings = core.settings
    return (
        Limit(
            "code_address",
            address,
            settings.verification_codes_per_address_per_hour,
            HOUR,
            "codes for this address",
        ),
        Limit(
            "code_client",
            client_index(core, client),
            settings.verification_codes_per_client_per_hour,
            HOUR,
            "codes from your network address",
        ),
    )


def _failure_limits(core: Core, address: str, client: str) -> tuple[Limit, ...]:
    settings = core.settings
    return (
        Limit(
            "failure_address",
            address,
            settings.verification_failures_per_address_per_day,
            DAY,
            "wrong codes for this address",
        ),
        Limit(
            "failure_client",
            client_index(core, client),
            settings.verification_failures_per_client_per_day,
            DAY,
            "wrong codes from your network address",
        ),
    )


async def _refusal(tx: WriteTx, limits: tuple[Limit, ...]) -> TooManyRequests | None:
    """A 429 if any limit is reached, with the seconds until the last of them frees."""
    waits: list[tuple[int, Limit]] = []
    for limit in limits:
        if limit.most < 1:
            waits.append((int(limit.window.total_seconds()), limit))
            continue
        row = await tx.fetchrow(  # the `most`-th latest event in the window, if there is one
            "SELECT at FROM verification_events WHERE kind = ? AND key = ? AND at > ?"
            " ORDER BY at DESC LIMIT 1 OFFSET ?",
            limit.kind,
            limit.key,
            tx.now - limit.window,
            limit.most - 1,
        )
        if row is not None:
            frees = (row["at"] + limit.window - tx.now).total_seconds()
            waits.append((max(1, math.ceil(frees)), limit))
    if not waits:
        return None
    seconds, limit = max(waits, key=lambda w: w[0])
    per = "hour" if limit.window == HOUR else "day"
    return TooManyRequests(
        f"too many {limit.what}: at most {limit.most} per {per}; try again in"
        f" {_duration(seconds)} (Retry-After)",
        retry_after=seconds,
    )


async def _count(tx: WriteTx, limits: tuple[Limit, ...]) -> None:
    """Count one event under each limit, and forget what no window still needs."""
    await tx.executemany(
        "INSERT INTO verification_events (id, kind, key, at) VALUES (?, ?, ?, ?)",
        [(uuid.uuid4(), limit.kind, limit.key, tx.now) for limit in limits],
    )
    await tx.execute("DELETE FROM verification_events WHERE at <= ?", tx.now - DAY)
    await tx.execute("DELETE FROM verification_codes WHERE expires_at <= ?", tx.now)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes < 120 else f"{math.ceil(minutes / 60)} hours"
