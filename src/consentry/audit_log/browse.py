"""The audit log for compliance officers: filter, page, export, prove.

Entries hold no personal data, so reading the log is not itself a read of personal data; an
export is audited all the same (who took which slice of the log).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from consentry.audit.chain import AuditEntry
from consentry.audit.checkpoints import Checkpoint
from consentry.audit.export import CSV_COLUMNS, csv_row, entry_line, extend_ranges, make_header
from consentry.audit.verify import ROW_COLUMNS, row_entry
from consentry.audit_log.tree import checkpoint_at, checkpoints
from consentry.core.principals import Principal
from consentry.core.runtime import Core
from consentry.domain.errors import Invalid, NotFound
from consentry.domain.pagination import Page, check_limit, decode_cursor, encode_cursor, page_of

Order = Literal["asc", "desc"]
EXPORT_CHUNK = 1000
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class AuditFilter:
    subject_id: UUID | None = None
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in ".*" ("consent.*")
    purpose: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise Invalid("since must be before until", field="since")

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.subject_id is not None:
            clauses.append("target = ?")
            args.append(f"subject:{self.subject_id}")
        if self.actor:
            clauses.append("actor = ?")
            args.append(self.actor)
        if self.action:
            if self.action.endswith(".*"):
                clauses.append("action LIKE ? ESCAPE '\\'")
                args.append(_like_escape(self.action[:-1]) + "%")
            else:
                clauses.append("action = ?")
                args.append(self.action)
        if self.purpose:
            clauses.append("purposes LIKE ? ESCAPE '\\'")
            args.append(f"%,{_like_escape(self.purpose)},%")
        if self.since:
            clauses.append("at >= ?")
            args.append(self.since)
        if self.until:
            clauses.append("at < ?")
            args.append(self.until)
        return clauses, args

    def is_empty(self) -> bool:
        return not any(asdict(self).values())

    def describe(self) -> dict[str, str]:
        """The filter as it goes into an export header (pseudonymous: subject id, not name)."""
        return {
            k: v.isoformat() if isinstance(v, datetime) else str(v)
            for k, v in asdict(self).items()
            if v is not None
        }


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _select(f: AuditFilter, extra: list[str], args: list[Any]) -> tuple[str, list[Any]]:
    clauses, filter_args = f.where()
    where = " AND ".join(clauses + extra) or "1 = 1"
    return where, filter_args + args


async def list_entries(
    core: Core, f: AuditFilter, *, order: Order, cursor: str | None, limit: int
) -> Page[AuditEntry]:
    check_limit(limit)
    after = decode_cursor(cursor, 1)
    extra: list[str] = []
    args: list[Any] = []
    if after is not None:
        if not isinstance(after[0], int):
            raise Invalid("cursor is not one this service issued; start again without it")
        extra.append("seq > ?" if order == "asc" else "seq < ?")
        args.append(after[0])
    where, all_args = _select(f, extra, args)
    rows = await core.db.fetch_tuples(
        f"SELECT {ROW_COLUMNS} FROM audit_log WHERE {where}"
        f" ORDER BY seq {'ASC' if order == 'asc' else 'DESC'} LIMIT ?",
        *all_args,
        limit + 1,
    )
    items = [row_entry(r) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor(items[-1].seq) if more else None)


async def get_entry(core: Core, seq: int) -> AuditEntry:
    rows = await core.db.fetch_tuples(f"SELECT {ROW_COLUMNS} FROM audit_log WHERE seq = ?", seq)
    if not rows:
        raise NotFound(f"there is no audit entry {seq}")
    return row_entry(rows[0])


# -- proofs -----------------------------------------------------------------------------------


async def list_checkpoints(core: Core, *, cursor: str | None, limit: int) -> Page[Checkpoint]:
    """Signed checkpoints, newest first; the cursor is the last tree size seen."""
    before = decode_cursor(cursor, 1)
    if before is not None and not isinstance(before[0], int):
        raise Invalid("cursor is not one this service issued; start again without it")
    found = await checkpoints(core.db, before=before[0] if before else None, limit=limit + 1)
    return page_of(found, limit, lambda c: (c.tree_size,))


async def covering_checkpoint(core: Core, tree_size: int | None) -> Checkpoint:
    """The checkpoint asked for, or a fresh one over everything committed."""
    if tree_size is not None:
        return await checkpoint_at(core.db, tree_size)
    return await core.checkpointer.checkpoint()


async def inclusion(core: Core, seq: int, tree_size: int | None) -> tuple[Checkpoint, list[bytes]]:
    cp = await covering_checkpoint(core, tree_size)
    if not 1 <= seq <= cp.tree_size:
        raise Invalid(
            f"entry {seq} is not in the checkpoint of tree size {cp.tree_size}", field="seq"
        )
    return cp, await core.checkpointer.tree.inclusion_proof(seq - 1, cp.tree_size)


async def consistency(
    core: Core, old_size: int, new_size: int
) -> tuple[Checkpoint, Checkpoint, list[bytes]]:
    if not 0 < old_size <= new_size:
        raise Invalid("from must be at least 1 and not more than to", field="from")
    old, new = await checkpoint_at(core.db, old_size), await checkpoint_at(core.db, new_size)
    return old, new, await core.checkpointer.tree.consistency_proof(old_size, new_size)


# -- export -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Export:
    checkpoint: Checkpoint
    header: dict[str, Any]
    lines: AsyncIterator[bytes]


async def export(
    core: Core, f: AuditFilter, fmt: Literal["jsonl", "csv"], actor: Principal
) -> Export:
    """A streamed export proven against a fresh checkpoint. The header is signed and lists
    exactly which entries follow; a filtered export carries an inclusion proof per entry."""
    cp = await core.checkpointer.checkpoint()
    ranges: list[list[int]] = []
    async for seqs in _matching(core, f, cp.tree_size, "seq"):  # a first pass, seqs only
        extend_ranges(ranges, (int(r[0]) for r in seqs))
    proofs = not f.is_empty()
    header = make_header(
        core.signing_key,
        cp,
        filters=f.describe(),
        seqs=ranges,
        proofs=proofs,
        generated_at=core.clock(),
    )

    async def job(tx: Any) -> None:
        target = f"subject:{f.subject_id}" if f.subject_id else "audit_log"
        tx.audit(
            actor.actor,
            "audit.exported",
            target,
            format=fmt,
            entries=header["count"],
            tree_size=cp.tree_size,
            filters=sorted(f.describe()),
        )

    await core.writer.submit(job)
    return Export(cp, header, _lines(core, f, cp, proofs, fmt, header))


async def _matching(
    core: Core, f: AuditFilter, tree_size: int, columns: str
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Entries matching the filter up to the checkpoint, in seq order, a chunk at a time
    (keyset pagination): nothing holds more than one chunk in memory."""
    after = 0
    while True:
        where, args = _select(f, ["seq <= ?", "seq > ?"], [tree_size, after])
        rows = await core.db.fetch_tuples(
            f"SELECT {columns} FROM audit_log WHERE {where} ORDER BY seq LIMIT ?",
            *args,
            EXPORT_CHUNK,
        )
        if not rows:
            return
        yield rows
        after = int(rows[-1][0])


async def _lines(
    core: Core,
    f: AuditFilter,
    cp: Checkpoint,
    proofs: bool,
    fmt: Literal["jsonl", "csv"],
    header: dict[str, Any],
) -> AsyncIterator[bytes]:
    if fmt == "jsonl":
        yield _encode(header) + b"\n"
    else:
        yield _csv([list(CSV_COLUMNS)])
    tree = core.checkpointer.tree
    async for rows in _matching(core, f, cp.tree_size, ROW_COLUMNS):
        entries = [row_entry(r) for r in rows]
        paths: list[list[bytes] | None] = [None] * len(entries)
        if proofs:
            paths = list(await tree.inclusion_proofs([e.seq for e in entries], cp.tree_size))
        pairs = list(zip(entries, paths, strict=True))
        if fmt == "jsonl":
            yield b"".join(_encode(entry_line(e, p)) + b"\n" for e, p in pairs)
        else:
            yield _csv([csv_row(e, p) for e, p in pairs])


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()
