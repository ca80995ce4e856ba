"""The audit log for compliance officers: browse, export, checkpoints, proofs, public keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, PathParameter, QueryParameter
from litestar.response import Stream
from msgspec.structs import replace

from consentry import customers
from consentry.access import require
from consentry.audit.chain import AuditEntry
from consentry.audit.checkpoints import Checkpoint
from consentry.audit_log import browse as audit_log
from consentry.audit_log import schemas as s
from consentry.audit_log import tree as audit_tree
from consentry.audit_log.browse import AuditFilter
from consentry.core import notes as audit_notes
from consentry.core.principals import Principal, Scope
from consentry.core.runtime import Core
from consentry.domain.errors import Invalid
from consentry.http.deps import CoreDep, Cursor, Instant, Limit, PrincipalDep, plain
from consentry.http.schemas import wire

Seq = Annotated[int, PathParameter(ge=1, le=2**62, description="the entry's sequence number")]
Customer = Annotated[
    str | None,
    QueryParameter(description="the customer's external id: entries whose target is this customer"),
]
Subject = Annotated[
    UUID | None,
    QueryParameter(description="the customer's pseudonymous id (works after erasure too)"),
]
Action = Annotated[
    str | None,
    QueryParameter(description="an action, e.g. consent.recorded, or a prefix such as consent.*"),
]


def entry_out(e: AuditEntry, reasons: dict[int, str] | None = None) -> s.AuditEntryOut:
    """The entry, with its sealed reason opened where there is one."""
    return replace(wire(e, s.AuditEntryOut), reason=(reasons or {}).get(e.seq))


def checkpoint_out(c: Checkpoint) -> s.CheckpointOut:
    return wire(c, s.CheckpointOut)


async def provide_filter(
    core: CoreDep,
    principal: PrincipalDep,
    customer: Customer = None,
    subject: Subject = None,
    actor: FromQuery[str | None] = None,
    action: Action = None,
    purpose: FromQuery[str | None] = None,
    since: FromQuery[Instant | None] = None,
    until: FromQuery[Instant | None] = None,
) -> AuditFilter:
    """The filter every audit listing and export takes, from the query (after the scope check,
    so a key without it learns nothing about which customers exist)."""
    require(principal, Scope.COMPLIANCE_READ)
    if customer and subject:
        raise Invalid("give customer or subject, not both", field="customer")
    if customer:
        subject, _ = await customers.resolve(core, customer)
    return AuditFilter(subject, actor, action, purpose, plain(since), plain(until))


FilterDep = NamedDependency[AuditFilter]


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]
    dependencies = {"audit_filter": Provide(provide_filter)}

    @get(
        "/entries",
        summary="Browse the audit log (compliance:read)",
        description="Filter by customer (external id) or subject (pseudonymous id), actor, action"
        " (a prefix such as consent.*), purpose and time; newest first by default; paginated with"
        " next_cursor. Entries hold no personal data in clear.",
        operation_id="listAuditEntries",
    )
    async def entries(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        audit_filter: FilterDep,
        order: FromQuery[Literal["desc", "asc"]] = "desc",
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> s.AuditPage:
        require(principal, Scope.COMPLIANCE_READ)
        page = await audit_log.list_entries(
            core, audit_filter, order=order, cursor=cursor, limit=limit
        )
        opened = await audit_notes.reasons(core, page.items)
        return s.AuditPage([entry_out(e, opened) for e in page.items], page.next_cursor)

    @get(
        "/entries/{seq:int}",
        summary="One audit entry",
        description="The entry with its hash and the hash of the one before, which link it into"
        " the chain.",
        operation_id="getAuditEntry",
    )
    async def entry(self, core: CoreDep, principal: PrincipalDep, seq: Seq) -> s.AuditEntryOut:
        require(principal, Scope.COMPLIANCE_READ)
        found = await audit_log.get_entry(core, seq)
        return entry_out(found, await audit_notes.reasons(core, [found]))

    @get(
        "/entries/{seq:int}/proof",
        summary="Inclusion proof of an entry in a checkpoint",
        description="An RFC 6962 Merkle audit path from the entry to the root of a signed"
        " checkpoint (a fresh one unless tree_size names one): proves the entry is in the log"
        " without the rest of it. 409 when the entry is not covered by that checkpoint.",
        operation_id="getInclusionProof",
    )
    async def proof(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        seq: Seq,
        tree_size: Annotated[
            int | None,
            QueryParameter(
                ge=1, le=2**62, description="a signed checkpoint's size; default: a fresh one"
            ),
        ] = None,
    ) -> s.InclusionProofOut:
        require(principal, Scope.COMPLIANCE_READ)
        cp, path = await audit_log.inclusion(core, seq, tree_size)
        entry = await audit_log.get_entry(core, seq)
        return s.InclusionProofOut(
            seq, seq - 1, entry.hash, [h.hex() for h in path], checkpoint_out(cp)
        )

    @get(
        "/export",
        summary="Export a filtered range as JSONL, verifiable offline, streamed",
        description="A signed header line (checkpoint, filters, the exact sequence numbers that"
        " follow), then one entry per line; a filtered export carries an inclusion proof per"
        " entry. Check it offline with `consentry audit verify FILE --public-key KEYS`.",
        operation_id="exportAuditJsonl",
        media_type="application/x-ndjson",
    )
    async def export_jsonl(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        audit_filter: FilterDep,
    ) -> Stream:
        return await _export(core, principal, audit_filter, "jsonl")

    @get(
        "/export.csv",
        summary="Export a filtered range as CSV, streamed",
        description="The same entries as the JSONL export, with their inclusion proofs, for"
        " spreadsheets; the checkpoint's size is in the Consentry-Checkpoint-Size header."
        " Verify with the JSONL export.",
        operation_id="exportAuditCsv",
        media_type="text/csv",
    )
    async def export_csv(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        audit_filter: FilterDep,
    ) -> Stream:
        return await _export(core, principal, audit_filter, "csv")

    @get(
        "/checkpoints",
        summary="Signed checkpoints, newest first",
        description="Each checkpoint signs (Ed25519) the tree size, the Merkle root and the chain"
        " head at a moment; verify with the public keys. Paginated with next_cursor.",
        operation_id="listCheckpoints",
    )
    async def checkpoints(
        self, core: CoreDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 100
    ) -> s.CheckpointPage:
        require(principal, Scope.COMPLIANCE_READ)
        page = await audit_log.list_checkpoints(core, cursor=cursor, limit=limit)
        return wire(page, s.CheckpointPage)

    @post(
        "/checkpoints",
        summary="Sign a checkpoint now, over every committed entry",
        description="Checkpoints are also signed every second or every 1,000 entries; this one"
        " covers everything committed before the call.",
        operation_id="signCheckpoint",
    )
    async def sign_now(self, core: CoreDep, principal: PrincipalDep) -> Response[s.CheckpointOut]:
        require(principal, Scope.COMPLIANCE_READ)
        return Response(checkpoint_out(await core.checkpointer.checkpoint()), status_code=201)

    @get(
        "/consistency",
        summary="Consistency proof: a later checkpoint extends an earlier one",
        description="An RFC 6962 consistency proof between two signed checkpoints (`from`, `to`:"
        " tree sizes): shows that history up to `from` was not rewritten. 404 when no checkpoint"
        " has one of the sizes.",
        operation_id="getConsistencyProof",
    )
    async def consistency(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        from_size: Annotated[int, QueryParameter(query="from", ge=1, le=2**62)],
        to_size: Annotated[int, QueryParameter(query="to", ge=1, le=2**62)],
    ) -> s.ConsistencyProofOut:
        require(principal, Scope.COMPLIANCE_READ)
        old, new, path = await audit_log.consistency(core, from_size, to_size)
        return s.ConsistencyProofOut(
            from_size, to_size, [h.hex() for h in path], checkpoint_out(old), checkpoint_out(new)
        )

    @get(
        "/keys",
        summary="Every public key checkpoints and receipts were signed with",
        description="PEM and JWK per key, with when it was created and retired; `current` names"
        " the key signing now.",
        operation_id="listSigningKeys",
    )
    async def keys(self, core: CoreDep, principal: PrincipalDep) -> s.PublicKeyList:
        require(principal, Scope.COMPLIANCE_READ)
        return await _keys(core)

    @post(
        "/keys/rotate",
        summary="Rotate the signing key (admin); old keys stay published",
        description="A new Ed25519 key signs from now on; the old one is retired but stays"
        " published, so what it signed still verifies.",
        operation_id="rotateSigningKey",
    )
    async def rotate(self, core: CoreDep, principal: PrincipalDep) -> Response[s.PublicKeyList]:
        require(principal, Scope.ADMIN)
        await audit_tree.rotate_key(core.checkpointer, core.settings, principal.actor)
        return Response(await _keys(core), status_code=201)


async def _export(
    core: Core, principal: Principal, f: AuditFilter, fmt: Literal["jsonl", "csv"]
) -> Stream:
    require(principal, Scope.COMPLIANCE_READ)
    result = await audit_log.export(core, f, fmt, principal)
    name = f"audit-{result.checkpoint.tree_size}.{fmt}"
    return Stream(
        result.lines,
        media_type="application/x-ndjson" if fmt == "jsonl" else "text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Consentry-Checkpoint-Size": str(result.checkpoint.tree_size),
        },
    )


async def _keys(core: Core) -> s.PublicKeyList:
    return s.PublicKeyList(
        core.signing_key.key_id,
        [
            s.PublicKeyOut(k.key_id, k.pem(), k.jwk(), created, retired)
            for k, created, retired in await audit_tree.published_keys(core.db)
        ],
    )


@get(
    "/.well-known/jwks.json",
    tags=["audit"],
    summary="Public keys (JWK Set)",
    description="Every Ed25519 key that signed checkpoints, receipts or certificates, as a JWK"
    " Set (RFC 7517), for offline verification. Public.",
    operation_id="getJwks",
    security=[],
)
async def jwks(core: CoreDep) -> dict[str, Any]:
    return (await audit_tree.key_ring(core.db)).jwks()


@get(
    "/.well-known/consentry-audit-keys.pem",
    tags=["audit"],
    summary="Public keys (PEM, newest last)",
    description="The same keys as /.well-known/jwks.json, as concatenated PEM blocks, for"
    " `consentry audit verify --public-key`. Public.",
    operation_id="getAuditKeysPem",
    security=[],
    media_type="application/x-pem-file",
)
async def pem(core: CoreDep) -> str:
    return "".join(k.pem() for k, _, _ in await audit_tree.published_keys(core.db))


CONTROLLERS: list[Any] = [AuditController, jwks, pem]
