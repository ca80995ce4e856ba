"""HTTP routes, mounted by the core under /v1/plugins/segments/.

- POST   /                    create a segment (admin, backend:write)
- GET    /                    list segments (admin, backend:read)
- GET    /{id}                one segment
- DELETE /{id}                delete it (admin, backend:write)
- POST   /preview             count the members of a filter without saving it
- GET    /{id}/count          count its members now
- GET    /{id}/members        its members now: pseudonymous subject ids, paginated

The plugin never reads core tables: counts and members come from the gate
(`gate.count`/`gate.members`), which compiles the filter tree, adds the consent condition for
the purpose and audits each query (`plugin.query`, with who asked for which segment). Members
are pseudonymous ids only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter
from msgspec import Meta, Struct

from consentry.plugins import (
    ContextDep,
    Cursor,
    Invalid,
    Limit,
    NotFound,
    PluginContext,
    PluginTx,
    Principal,
    PrincipalDep,
    Scope,
    clean_name,
    decode_cursor,
    encode_cursor,
    require,
)
from consentry_segments import store
from consentry_segments.filters import (
    CAPABILITY,
    FILTER_JSON_SCHEMA,
    Segment,
    check_purpose,
    parse,
)

READ = (Scope.ADMIN, Scope.BACKEND_READ)
WRITE = (Scope.ADMIN, Scope.BACKEND_WRITE)
TARGET = "segment:"


SegmentId = Annotated[UUID, PathParameter(description="The segment's id")]
# The whole grammar travels with the field: the OpenAPI document hoists its $defs into components.
Filter = Annotated[
    dict[str, Any],
    Meta(description="The filter (see SegmentFilter)", extra_json_schema=FILTER_JSON_SCHEMA),
]


class SegmentIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=store.MAX_NAME)]
    purpose: Annotated[str, Meta(max_length=100)]
    filter: Filter

    def __post_init__(self) -> None:
        self.name = clean_name(self.name, field="name")


class PreviewIn(Struct, forbid_unknown_fields=True):
    purpose: Annotated[str, Meta(max_length=100)]
    filter: Filter


class SegmentOut(Struct):
    id: UUID
    name: str
    purpose: str
    filter: Filter
    created_by: str
    created_at: datetime


class SegmentPage(Struct):
    items: list[SegmentOut]
    next_cursor: str | None


class CountOut(Struct):
    purpose: str
    count: int
    evaluated_at: datetime


class MemberPage(Struct):
    segment_id: SegmentId
    purpose: str
    items: list[UUID]
    next_cursor: str | None
    evaluated_at: datetime


def _out(s: store.StoredSegment) -> SegmentOut:
    return SegmentOut(s.id, s.name, s.purpose, s.filter, s.created_by, s.created_at)


def _after(cursor: str | None) -> UUID | None:
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    try:
        return UUID(str(values[0]))
    except ValueError:
        raise Invalid("cursor is not one this service issued; start again", field="cursor") from (
            None
        )


async def _counted(
    context: PluginContext, principal: Principal, segment: Segment, target: str
) -> CountOut:
    now = context.now()
    n = await context.gate.count(
        CAPABILITY, segment.purpose, segment.root, requested_by=f"{principal.actor} {target}"
    )
    return CountOut(segment.purpose, n, now)


class SegmentController(Controller):
    path = "/"

    @post(
        "/",
        summary="Create a segment: a filter over attributes and events, for a purpose",
        description="The filter (see SegmentFilter) may use only data the purpose may use,"
        " under the policy's gate for segments.membership; the problem names the offending part.",
        operation_id="segmentsCreateSegment",
    )
    async def create(
        self, context: ContextDep, principal: PrincipalDep, data: JSONBody[SegmentIn]
    ) -> SegmentOut:
        require(principal, *WRITE)
        name = store.check_name(data.name)
        parse(context.policy, data.purpose, data.filter)

        async def job(tx: PluginTx) -> store.StoredSegment:
            created = await store.insert(tx, name, data.purpose, data.filter, principal.actor)
            tx.audit(
                principal.actor,
                "segments.created",
                f"{TARGET}{created.id}",
                purpose=data.purpose,
            )
            return created

        return _out(await context.write(job))

    @get(
        "/",
        summary="Segments, in id order",
        description="Their names, purposes and filters; paginated with next_cursor.",
        operation_id="segmentsListSegments",
    )
    async def list_segments(
        self,
        context: ContextDep,
        principal: PrincipalDep,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> SegmentPage:
        require(principal, *READ)
        rows = await store.list_all(context, _after(cursor), limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return SegmentPage(
            [_out(r) for r in rows], encode_cursor(str(rows[-1].id)) if more else None
        )

    @get(
        "/{segment_id:uuid}",
        summary="One segment",
        description="Its name, purpose, filter, and who created it when.",
        operation_id="segmentsGetSegment",
    )
    async def get_segment(
        self, context: ContextDep, principal: PrincipalDep, segment_id: SegmentId
    ) -> SegmentOut:
        require(principal, *READ)
        return _out(await store.get(context, segment_id))

    @delete(
        "/{segment_id:uuid}",
        summary="Delete a segment",
        description="The definition goes; nothing about its members was stored. Audited.",
        operation_id="segmentsDeleteSegment",
        status_code=204,
    )
    async def delete_segment(
        self, context: ContextDep, principal: PrincipalDep, segment_id: SegmentId
    ) -> None:
        require(principal, *WRITE)

        async def job(tx: PluginTx) -> bool:
            gone = await store.delete(tx, segment_id)
            if gone:
                tx.audit(principal.actor, "segments.deleted", f"{TARGET}{segment_id}")
            return gone

        if not await context.write(job):
            raise NotFound(f"no segment {segment_id}")

    @post(
        "/preview",
        summary="Count the members of a filter without saving it",
        description="Checked as on create, then counted through the gate (consent for the purpose"
        " included); the query is audited.",
        operation_id="segmentsPreviewSegment",
        status_code=200,
    )
    async def preview(
        self, context: ContextDep, principal: PrincipalDep, data: JSONBody[PreviewIn]
    ) -> CountOut:
        require(principal, *READ)
        segment = parse(context.policy, check_purpose(context.policy, data.purpose), data.filter)
        return await _counted(context, principal, segment, "segment:preview")

    @get(
        "/{segment_id:uuid}/count",
        summary="How many customers are members now",
        description="Evaluated now, through the gate: only customers whose consent covers"
        " the purpose count. The query is audited.",
        operation_id="segmentsCountMembers",
    )
    async def count(
        self, context: ContextDep, principal: PrincipalDep, segment_id: SegmentId
    ) -> CountOut:
        require(principal, *READ)
        stored = await store.get(context, segment_id)
        segment = store.revalidate(context.policy, stored)
        return await _counted(context, principal, segment, f"{TARGET}{segment_id}")

    @get(
        "/{segment_id:uuid}/members",
        summary="Members now, as pseudonymous subject ids (an audited staff read)",
        description="Evaluated now, through the gate; pseudonymous ids only, in id order,"
        " paginated with next_cursor.",
        operation_id="segmentsListMembers",
    )
    async def members(
        self,
        context: ContextDep,
        principal: PrincipalDep,
        segment_id: SegmentId,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> MemberPage:
        require(principal, *READ)
        stored = await store.get(context, segment_id)
        segment = store.revalidate(context.policy, stored)
        after = _after(cursor)
        now = context.now()

        ids = await context.gate.members(
            CAPABILITY,
            segment.purpose,
            segment.root,
            after=after,
            limit=limit,
            requested_by=f"{principal.actor} {TARGET}{segment_id}",
        )
        more = len(ids) > limit
        ids = ids[:limit]
        return MemberPage(
            segment_id, segment.purpose, ids, encode_cursor(str(ids[-1])) if more else None, now
        )
