"""The plugin's own table and its SQL. Templates are company content: no customer data here.

Every change is one transaction of the core's single writer (`context.write`) with one audit
entry (actor, template id, name, kind). Reads go straight to the database (`context.fetch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from piccolo.columns import UUID as UUIDColumn
from piccolo.columns import Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from consentry.plugins import (
    Conflict,
    NotFound,
    Page,
    PluginContext,
    PluginTx,
    check_limit,
    decode_cursor,
    page_of,
)

TABLE = "templates_templates"
COLUMNS = (
    "id, name, kind, capability, subject, body, strict_variables, version, created_at, updated_at"
)


class TemplateTable(Table, tablename=TABLE):
    id = UUIDColumn(primary_key=True)
    name = Varchar(length=200, unique=True)
    kind = Varchar(length=10)
    capability = Varchar(length=100)
    subject = Text(default="")
    body = Text(default="")
    strict_variables = Boolean(default=True)
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


@dataclass(frozen=True, slots=True)
class Draft:
    """What a caller gives for a template (already checked by `render.compile_template`)."""

    name: str
    kind: str
    capability: str
    subject: str
    body: str
    strict: bool


@dataclass(frozen=True, slots=True)
class Stored:
    id: UUID
    name: str
    kind: str
    capability: str
    subject: str
    body: str
    strict: bool
    version: int
    created_at: datetime
    updated_at: datetime


def _stored(row: dict[str, Any]) -> Stored:
    return Stored(
        id=UUID(str(row["id"])),
        name=row["name"],
        kind=row["kind"],
        capability=row["capability"],
        subject=row["subject"] or "",
        body=row["body"] or "",
        strict=bool(row["strict_variables"]),
        version=int(row["version"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def parse_id(template_id: str) -> UUID:
    try:
        return UUID(template_id)
    except ValueError:
        raise NotFound(f"no template with id '{template_id[:80]}'") from None


async def _name_taken(tx: PluginTx, name: str, other_than: UUID | None) -> None:
    row = await tx.fetchrow(f"SELECT id FROM {TABLE} WHERE name = ?", name)
    if row is not None and UUID(str(row["id"])) != other_than:
        raise Conflict(f"a template named '{name}' exists already", field="name")


def _audit(tx: PluginTx, actor: str, action: str, stored: Stored) -> None:
    tx.audit(
        actor,
        action,
        f"template:{stored.id}",
        name=stored.name,
        kind=stored.kind,
        capability=stored.capability,
        version=stored.version,
    )


async def create(context: PluginContext, draft: Draft, actor: str) -> Stored:
    async def job(tx: PluginTx) -> Stored:
        await _name_taken(tx, draft.name, None)
        stored = Stored(uuid4(), *_fields(draft), 1, tx.now, tx.now)
        await tx.execute(
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            stored.id,
            stored.name,
            stored.kind,
            stored.capability,
            stored.subject,
            stored.body,
            stored.strict,
            stored.version,
            stored.created_at,
            stored.updated_at,
        )
        _audit(tx, actor, "template.created", stored)
        return stored

    return await context.write(job)


def _fields(draft: Draft) -> tuple[str, str, str, str, str, bool]:
    return (draft.name, draft.kind, draft.capability, draft.subject, draft.body, draft.strict)


async def update(context: PluginContext, template_id: UUID, draft: Draft, actor: str) -> Stored:
    async def job(tx: PluginTx) -> Stored:
        row = await tx.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} WHERE id = ?", template_id)
        if row is None:
            raise NotFound(f"no template with id '{template_id}'")
        await _name_taken(tx, draft.name, template_id)
        old = _stored(row)
        stored = Stored(template_id, *_fields(draft), old.version + 1, old.created_at, tx.now)
        await tx.execute(
            f"UPDATE {TABLE} SET name = ?, kind = ?, capability = ?, subject = ?, body = ?,"
            " strict_variables = ?, version = ?, updated_at = ? WHERE id = ?",
            stored.name,
            stored.kind,
            stored.capability,
            stored.subject,
            stored.body,
            stored.strict,
            stored.version,
            stored.updated_at,
            template_id,
        )
        _audit(tx, actor, "template.updated", stored)
        return stored

    return await context.write(job)


async def delete(context: PluginContext, template_id: UUID, actor: str) -> Stored:
    async def job(tx: PluginTx) -> Stored:
        row = await tx.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} WHERE id = ?", template_id)
        if row is None:
            raise NotFound(f"no template with id '{template_id}'")
        stored = _stored(row)
        await tx.execute(f"DELETE FROM {TABLE} WHERE id = ?", template_id)
        _audit(tx, actor, "template.deleted", stored)
        return stored

    return await context.write(job)


async def get(context: PluginContext, template_id: UUID) -> Stored:
    row = await context.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} WHERE id = ?", template_id)
    if row is None:
        raise NotFound(f"no template with id '{template_id}'")
    return _stored(row)


async def list_page(context: PluginContext, *, cursor: str | None, limit: int) -> Page[Stored]:
    """By name: stable pages with a cursor."""
    check_limit(limit)
    after = decode_cursor(cursor, 1)
    rows = await context.fetch(
        f"SELECT {COLUMNS} FROM {TABLE} WHERE name > ? ORDER BY name LIMIT ?",
        str(after[0]) if after else "",
        limit + 1,
    )
    page = page_of([_stored(r) for r in rows], limit, lambda s: (s.name,))
    return page
