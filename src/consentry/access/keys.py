"""API keys (hashed at rest, scoped, revocable) and short-lived customer tokens."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from consentry.core.principals import Principal, Scope
from consentry.core.runtime import Core
from consentry.crypto.tokens import (
    TokenError,
    hash_api_key_secret,
    new_api_key,
    parse_api_key,
    sign_token,
    verify_token,
)
from consentry.domain.errors import Conflict, Invalid, NotFound, Unauthorized
from consentry.domain.pagination import Page, check_limit, decode_cursor, page_of
from consentry.storage.writer import WriteTx

CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    info: ApiKeyInfo
    key: str  # shown once


def _scopes(names: list[str]) -> list[Scope]:
    if not names:
        raise Invalid("give at least one scope", field="scopes")
    try:
        return sorted({Scope(n) for n in names}, key=lambda s: s.value)
    except ValueError:
        allowed = ", ".join(s.value for s in Scope)
        raise Invalid(f"scopes must be among {allowed}", field="scopes") from None


async def create_key(core: Core, name: str, scopes: list[str], actor: Principal) -> NewApiKey:
    if not name.strip() or len(name) > 200:
        raise Invalid("name must be 1-200 characters", field="name")
    chosen = _scopes(scopes)
    key_id, full, digest = new_api_key()

    async def job(tx: WriteTx) -> NewApiKey:
        await tx.execute(
            "INSERT INTO api_keys (id, name, scopes, secret_hash, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            key_id,
            name,
            ",".join(s.value for s in chosen),
            digest,
            actor.actor,
            tx.now,
        )
        tx.audit(
            actor.actor, "api_key.created", f"api_key:{key_id}", scopes=[s.value for s in chosen]
        )
        info = ApiKeyInfo(key_id, name, [s.value for s in chosen], actor.actor, tx.now, None)
        return NewApiKey(info, full)

    return await core.writer.submit(job)


def _info(row: dict[str, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        row["id"],
        row["name"],
        row["scopes"].split(","),
        row["created_by"],
        row["created_at"],
        row["revoked_at"],
    )


async def list_keys(core: Core, *, cursor: str | None, limit: int) -> Page[ApiKeyInfo]:
    check_limit(limit)
    after = decode_cursor(cursor, 1)
    rows = await core.db.fetch(
        "SELECT * FROM api_keys WHERE id > ? ORDER BY id LIMIT ?",
        after[0] if after else "",
        limit + 1,
    )
    return page_of([_info(r) for r in rows], limit, lambda k: (k.id,))


def _is_admin(row: dict[str, Any]) -> bool:
    return Scope.ADMIN.value in row["scopes"].split(",")


async def revoke_key(
    core: Core, key_id: str, actor: Principal, *, force: bool = False
) -> ApiKeyInfo:
    """Revoke a key. The last active admin key stays (nothing could mint another) unless
    `force` (the CLI's, which can always create one again)."""

    async def job(tx: WriteTx) -> ApiKeyInfo:
        row = await tx.fetchrow("SELECT * FROM api_keys WHERE id = ?", key_id)
        if row is None:
            raise NotFound(f"no API key '{key_id}'")
        if row["revoked_at"] is None:
            last = _is_admin(row) and not await _other_admin(tx, key_id)
            if last and not force:
                raise Conflict(
                    f"API key {key_id} is the last active admin key: revoking it would leave"
                    " no key able to manage keys. Create another admin key first (POST"
                    ' /v1/api-keys with scopes ["admin"], or `consentry keys create --scope'
                    " admin --name NAME`), then revoke this one"
                )
            await tx.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", tx.now, key_id)
            details = {"last_admin": True} if last else {}
            tx.audit(actor.actor, "api_key.revoked", f"api_key:{key_id}", **details)
            row = {**row, "revoked_at": tx.now}
        return _info(row)

    info = await core.writer.submit(job)
    _cache(core).pop(key_id, None)
    return info


async def _other_admin(tx: WriteTx, key_id: str) -> bool:
    """Another active admin key exists (read in the writer's transaction: no race)."""
    rows = await tx.fetch(
        "SELECT scopes FROM api_keys WHERE revoked_at IS NULL AND id <> ?", key_id
    )
    return any(_is_admin(r) for r in rows)


def _cache(core: Core) -> dict[str, tuple[float, str, frozenset[Scope], bool]]:
    cache: dict[str, tuple[float, str, frozenset[Scope], bool]] = core.caches.setdefault(
        "api_keys", {}
    )
    return cache


async def authenticate_key(core: Core, presented: str) -> Principal:
    """Revocation reaches this process at once, other instances within CACHE_SECONDS."""
    parsed = parse_api_key(presented)
    if parsed is None:
        raise Unauthorized("the API key is malformed; it looks like ck_<id>_<secret>")
    key_id, secret = parsed
    cache = _cache(core)
    entry = cache.get(key_id)
    if entry is None or entry[0] < time.monotonic():
        row = await core.db.fetchrow(
            "SELECT secret_hash, scopes, revoked_at FROM api_keys WHERE id = ?", key_id
        )
        if row is None:
            raise Unauthorized("unknown or revoked API key")
        scopes = frozenset(Scope(s) for s in row["scopes"].split(","))
        entry = (
            time.monotonic() + CACHE_SECONDS,
            row["secret_hash"],
            scopes,
            row["revoked_at"] is not None,
        )
        cache[key_id] = entry
    _, digest, scopes, revoked = entry
    if revoked or not hmac.compare_digest(digest, hash_api_key_secret(secret)):
        raise Unauthorized("unknown or revoked API key")
    return Principal("key", key_id, scopes)


async def bootstrap_admin_key(core: Core) -> str | None:
    """The first start creates one admin key and returns it (to print once); later starts None."""
    row = await core.db.fetchrow("SELECT value FROM consentry_meta WHERE name = 'bootstrapped'")
    if row is not None:
        return None
    system = Principal("system", "bootstrap")
    key_id, full, digest = new_api_key()

    async def job(tx: WriteTx) -> str | None:
        done = await tx.fetchrow("SELECT value FROM consentry_meta WHERE name = 'bootstrapped'")
        if done is not None:
            return None
        await tx.execute(
            "INSERT INTO api_keys (id, name, scopes, secret_hash, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            key_id,
            "bootstrap admin",
            "admin",
            digest,
            system.actor,
            tx.now,
        )
        await tx.execute(
            "INSERT INTO consentry_meta (name, value) VALUES ('bootstrapped', ?)",
            tx.now.isoformat(),
        )
        tx.audit(
            system.actor, "api_key.created", f"api_key:{key_id}", scopes=["admin"], bootstrap=True
        )
        return full

    return await core.writer.submit(job)


# -- customer tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerToken:
    token: str
    expires_at: datetime


async def issue_customer_token(
    core: Core, subject_id: UUID, actor: Principal, ttl_seconds: int | None = None
) -> CustomerToken:
    ttl = ttl_seconds or core.settings.customer_token_ttl_seconds
    if not 60 <= ttl <= 86_400:
        raise Invalid("ttl_seconds must be between 60 and 86400", field="ttl_seconds")

    async def job(tx: WriteTx) -> CustomerToken:
        return customer_token_in(core, tx, subject_id, actor, ttl)

    return await core.writer.submit(job)


def customer_token_in(
    core: Core, tx: WriteTx, subject_id: UUID, actor: Principal, ttl: int
) -> CustomerToken:
    """A customer token, issued (and audited) inside a transaction that may do more."""
    token = sign_token(
        core.secrets.token_key,
        {"sub": str(subject_id), "scope": "customer"},
        now=tx.now,
        ttl_seconds=ttl,
    )
    tx.audit(actor.actor, "customer_token.issued", f"subject:{subject_id}", ttl_seconds=ttl)
    return CustomerToken(token, tx.now + timedelta(seconds=ttl))


def authenticate_customer(core: Core, token: str) -> Principal:
    try:
        claims = verify_token(core.secrets.token_key, token, now=core.clock())
    except TokenError as exc:
        raise Unauthorized(f"customer token rejected: {exc.reason}") from None
    if claims.get("scope") != "customer" or not isinstance(claims.get("sub"), str):
        raise Unauthorized("customer token rejected: wrong scope")
    return Principal("customer", str(claims["sub"]))
