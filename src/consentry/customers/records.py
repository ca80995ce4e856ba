"""Customers (data subjects): upsert by the company's external id, encrypted identities, lookup.

Identities and sensitive attributes are stored encrypted under the customer's own data key;
email and phone are found through keyed blind indexes. Every read is audited.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from consentry.core.notes import seal_reason
from consentry.core.principals import Principal, require_customer
from consentry.core.runtime import Core
from consentry.crypto.blind_index import blind_index, normalize_identity
from consentry.crypto.envelope import decrypt_json, encrypt_json
from consentry.customers import tombstones
from consentry.domain.errors import Conflict, Invalid, NotFound
from consentry.domain.pagination import Page, check_limit, decode_cursor, page_of
from consentry.storage.database import Row, is_storage_full
from consentry.storage.writer import WriteTx

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ATTRIBUTES = 200


@dataclass(frozen=True, slots=True)
class CustomerUpsert:
    external_id: str
    region: str | None = None
    identities: dict[str, str | None] = field(default_factory=dict)  # None removes
    attributes: dict[str, Any] = field(default_factory=dict)  # None removes


@dataclass(frozen=True, slots=True)
class Customer:
    id: UUID
    external_id: str
    region: str
    identities: dict[str, str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    previously_erased_at: datetime | None = None  # this external id was an erased customer's


def check_external_id(external_id: str) -> str:
    if not EXTERNAL_ID.match(external_id):
        raise Invalid(
            "external_id must be 1-200 characters of letters, digits, '.', '_', ':' or '-',"
            " starting with a letter or digit",
            field="external_id",
        )
    return external_id


def _validate(core: Core, cmd: CustomerUpsert) -> dict[str, str | None]:
    check_external_id(cmd.external_id)
    policy = core.policy
    if cmd.region is not None and cmd.region not in policy.regions:
        known = ", ".join(sorted(policy.regions))
        raise Invalid(f"unknown region '{cmd.region}'; the policy knows {known}", field="region")
    identities: dict[str, str | None] = {}
    for kind, value in cmd.identities.items():
        if kind not in policy.identities:
            known = ", ".join(sorted(policy.identities))
            raise Invalid(
                f"unknown identity '{kind}'; the policy knows {known}", field=f"identities.{kind}"
            )
        try:
            identities[kind] = None if value is None else normalize_identity(kind, value)
        except ValueError as exc:
            raise Invalid(f"{kind} is not valid: {exc}", field=f"identities.{kind}") from None
    if len(cmd.attributes) > MAX_ATTRIBUTES:
        raise Invalid(f"at most {MAX_ATTRIBUTES} attributes per request", field="attributes")
    for name in cmd.attributes:
        if not ATTRIBUTE_NAME.match(name):
            raise Invalid(
                "attribute names are lowercase letters, digits and '_', starting with a"
                " letter, at most 64 characters",
                field=f"attributes.{name}",
            )
        if policy.category_of(name) is None:
            raise Invalid(
                f"attribute '{name}' has no data category in the policy; declare it under"
                " 'attributes' in the policy",
                field=f"attributes.{name}",
            )
    return identities


async def data_key(core: Core, subject_id: UUID) -> bytes:
    """The customer's data key, created on first use."""
    key = await core.keys.get(str(subject_id))
    return key if key is not None else await core.keys.create(str(subject_id))


def _aad(subject_id: UUID, part: str) -> str:
    return f"subject:{subject_id}:{part}"


async def upsert(core: Core, cmd: CustomerUpsert, actor: Principal) -> tuple[Customer, bool]:
    """Create or update a customer; attributes and identities merge, a None value removes one."""
    identities = _validate(core, cmd)
    found = await core.db.fetchrow("SELECT id FROM subjects WHERE external_id = ?", cmd.external_id)
    subject_id = UUID(str(found["id"])) if found else uuid.uuid4()
    stone = await tombstones.tombstone(core, cmd.external_id) if found is None else None
    dek = await data_key(core, subject_id)

    async def job(tx: WriteTx) -> tuple[Customer, bool]:
        row = await tx.fetchrow("SELECT * FROM subjects WHERE external_id = ?", cmd.external_id)
        sid, key = subject_id, dek
        if row is not None and UUID(str(row["id"])) != subject_id:  # created meanwhile
            sid = UUID(str(row["id"]))
            key = await data_key(core, sid)
        tx.concerns(sid, key)  # the answer holds identities: a stored replay is sealed
        current = decode_subject(row, key) if row else None
        merged = _merge(core, current, sid, cmd, identities, tx.now)
        if current is None and stone is not None:  # recognised: flagged, in the answer and audit
            merged = replace(merged, previously_erased_at=stone.erased_at)
        await _check_unique_email(core, tx, merged)
        await _write(core, tx, merged, key, created=current is None)
        changed = sorted({*cmd.attributes, *(f"identity.{k}" for k in identities)})
        tx.audit(
            actor.actor,
            "customer.created" if current is None else "customer.updated",
            f"subject:{sid}",
            fields=changed,
            region=merged.region,
            **({"previously_erased": str(stone.request_id)} if current is None and stone else {}),
        )
        return merged, current is None

    try:
        customer, created = await core.writer.submit(job)
    except BaseException as failed:
        if found is None:  # the key made for a customer that was not written
            try:
                await core.keys.destroy(str(subject_id))
            except Exception as cleanup:
                # a full disk may refuse the clean-up too: the caller hears why the write
                # failed; the orphan key seals nothing (no row was written with it)
                if not (is_storage_full(failed) and is_storage_full(cleanup)):
                    raise
        raise
    if found is None and customer.id != subject_id:  # another request created it first
        await core.keys.destroy(str(subject_id))
    return customer, created


def _merge(
    core: Core,
    current: Customer | None,
    sid: UUID,
    cmd: CustomerUpsert,
    identities: dict[str, str | None],
    now: datetime,
) -> Customer:
    ids = _merged(current.identities if current else {}, identities)
    attrs = _merged(current.attributes if current else {}, cmd.attributes)
    region = cmd.region or (current.region if current else core.policy.default_region)
    return Customer(
        id=sid,
        external_id=cmd.external_id,
        region=region,
        identities=ids,
        attributes=attrs,
        created_at=current.created_at if current else now,
        updated_at=now,
        version=current.version + 1 if current else 1,
    )


def _merged(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Changes win; a None value removes the key."""
    out = {**stored, **changes}
    return {k: v for k, v in out.items() if v is not None}


async def _check_unique_email(core: Core, tx: WriteTx, customer: Customer) -> None:
    email = customer.identities.get("email")
    if email is None:
        return
    other = await tx.fetchrow(
        "SELECT id FROM subjects WHERE email_index = ? AND id <> ?",
        blind_index(core.secrets.index_key, "email", email),
        customer.id,
    )
    if other is not None:
        raise Conflict("another customer already has this email address", field="identities.email")


def _split_attributes(core: Core, attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    plain = {k: v for k, v in attrs.items() if not core.policy.is_sensitive(k)}
    secret = {k: v for k, v in attrs.items() if core.policy.is_sensitive(k)}
    return plain, secret


async def _write(core: Core, tx: WriteTx, c: Customer, dek: bytes, *, created: bool) -> None:
    plain, secret = _split_attributes(core, c.attributes)
    index = core.secrets.index_key
    email, phone = c.identities.get("email"), c.identities.get("phone")
    values = (
        c.region,
        blind_index(index, "email", email) if email else None,
        blind_index(index, "phone", phone) if phone else None,
        encrypt_json(dek, c.identities, aad=_aad(c.id, "identities")),
        json.dumps(plain, sort_keys=True, default=str),
        encrypt_json(dek, secret, aad=_aad(c.id, "attributes")),
        c.updated_at,
        c.version,
    )
    if created:
        await tx.execute(
            "INSERT INTO subjects (region, email_index, phone_index, identities_enc, attributes,"
            " attributes_enc, updated_at, version, id, external_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            *values,
            c.id,
            c.external_id,
            c.created_at,
        )
    else:
        await tx.execute(
            "UPDATE subjects SET region = ?, email_index = ?, phone_index = ?, identities_enc = ?,"
            " attributes = ?, attributes_enc = ?, updated_at = ?, version = ? WHERE id = ?",
            *values,
            c.id,
        )


def decode_subject(row: Row, dek: bytes) -> Customer:
    sid = UUID(str(row["id"]))
    identities = (
        decrypt_json(dek, row["identities_enc"], aad=_aad(sid, "identities"))
        if row["identities_enc"]
        else {}
    )
    secret = (
        decrypt_json(dek, row["attributes_enc"], aad=_aad(sid, "attributes"))
        if row["attributes_enc"]
        else {}
    )
    plain = json.loads(row["attributes"] or "{}")
    return Customer(
        id=sid,
        external_id=row["external_id"],
        region=row["region"],
        identities=identities,
        attributes={**plain, **secret},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


# -- reads: each one is audited in the same transaction ---------------------------------------


async def resolve(core: Core, external_id: str) -> tuple[UUID, str]:
    """The internal id and region for an external id, or NotFound."""
    check_external_id(external_id)
    row = await core.db.fetchrow(
        "SELECT id, region FROM subjects WHERE external_id = ?", external_id
    )
    if row is None:
        raise await tombstones.missing(core, external_id)
    return UUID(str(row["id"])), row["region"]


async def me(core: Core, principal: Principal) -> tuple[UUID, str]:
    """The customer a customer token is for (and only a customer token): id and region."""
    require_customer(principal)
    return await locate(core, UUID(principal.id))


async def locate(core: Core, subject_id: UUID) -> tuple[UUID, str]:
    """The id and region of the customer with this internal id, or NotFound once they are gone."""
    row = await core.db.fetchrow("SELECT id, region FROM subjects WHERE id = ?", subject_id)
    if row is None:
        raise NotFound("this customer no longer exists")
    return UUID(str(row["id"])), row["region"]


async def get(
    core: Core, external_id: str, actor: Principal, reason: str | None = None
) -> Customer:
    check_external_id(external_id)

    async def job(tx: WriteTx) -> Customer:
        row = await tx.fetchrow("SELECT * FROM subjects WHERE external_id = ?", external_id)
        if row is None:
            raise NotFound(f"no customer with external_id '{external_id}'")
        customer = await _read(core, tx, row, actor, reason)
        return customer

    try:
        return await core.writer.submit(job)
    except NotFound:
        raise await tombstones.missing(core, external_id) from None


async def _read(
    core: Core, tx: WriteTx, row: Row, actor: Principal, reason: str | None, *, ours: bool = False
) -> Customer:
    """Decode the customer and audit the read; a caller's free-text reason is sealed with the
    customer's key (`ours`: a fixed text of the service's own, kept in clear)."""
    sid = UUID(str(row["id"]))
    dek = await core.keys.get(str(sid))
    if dek is None:
        raise NotFound("this customer's data key is gone (erased)")
    customer = decode_subject(row, dek)
    fields = sorted([*(f"identity.{k}" for k in customer.identities), *customer.attributes])
    tx.audit(
        actor.actor,
        "customer.read",
        f"subject:{sid}",
        fields=fields,
        **({} if not reason else {"reason": reason} if ours else seal_reason(dek, sid, reason)),
    )
    return customer


async def find_by_identity(core: Core, kind: str, value: str, actor: Principal) -> Customer:
    if kind not in core.policy.identities:
        raise Invalid(f"unknown identity '{kind}'", field=kind)
    try:
        digest = blind_index(core.secrets.index_key, kind, value)
    except ValueError as exc:
        raise Invalid(f"{kind} is not valid: {exc}", field=kind) from None
    column = "email_index" if kind == "email" else "phone_index"

    async def job(tx: WriteTx) -> Customer:
        row = await tx.fetchrow(f"SELECT * FROM subjects WHERE {column} = ?", digest)
        if row is None:
            raise NotFound(f"no customer with this {kind}")
        return await _read(core, tx, row, actor, f"lookup by {kind}", ours=True)

    return await core.writer.submit(job)


async def list_ids(core: Core, *, cursor: str | None, limit: int) -> Page[Row]:
    """External ids and regions only (no personal data), oldest first."""
    check_limit(limit)
    after = decode_cursor(cursor, 1)
    rows = await core.db.fetch(
        "SELECT id, external_id, region, created_at, updated_at FROM subjects"
        " WHERE external_id > ? ORDER BY external_id LIMIT ?",
        after[0] if after else "",
        limit + 1,
    )
    return page_of(rows, limit, lambda r: (r["external_id"],))
