"""Customer events: one at a time, in batches, and read back with filters."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery, JSONBody

from consentry import customers
from consentry.access import require
from consentry.core.principals import READ_SCOPES, Scope
from consentry.http.deps import CoreDep, Cursor, ExternalIdPath, Instant, Limit, PrincipalDep, plain
from consentry.http.schemas import wire
from consentry.http.writes import respond
from consentry.ledger import events
from consentry.ledger import schemas as s


def _ingested(stored: list[events.StoredEvent]) -> tuple[int, s.Ingested]:
    return 201, s.Ingested(len(stored), [e.id for e in stored])


class EventController(Controller):
    tags = ["events"]

    @post(
        "/v1/customers/{external_id:str}/events",
        summary="Record one event for a customer",
        description="A named event with its time (default: now) and properties, e.g."
        " payment_failed."
        " Segments and flows read events as behavior data.",
        operation_id="recordEvent",
    )
    async def one(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        data: JSONBody[s.EventIn],
    ) -> Response[s.Ingested]:
        require(principal, Scope.BACKEND_WRITE)
        batch = [data.command(external_id)]
        return await respond(
            request, principal, lambda: events.ingest(core, batch, principal), _ingested
        )

    @post(
        "/v1/events",
        summary="Record a batch of events (up to 1000, all or nothing)",
        description="Each event names its customer by external_id; if one is not valid, none is"
        " recorded and the problem names it (`events[3].name`).",
        operation_id="recordEventBatch",
    )
    async def batch(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.EventBatch],
    ) -> Response[s.Ingested]:
        require(principal, Scope.BACKEND_WRITE)
        batch = [e.command(e.external_id) for e in data.events]
        return await respond(
            request, principal, lambda: events.ingest(core, batch, principal), _ingested
        )

    @get(
        "/v1/customers/{external_id:str}/events",
        summary="A customer's events, newest first",
        description="Filter by name and time; paginated with next_cursor. Reading them is audited.",
        operation_id="listEvents",
    )
    async def read(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        external_id: ExternalIdPath,
        name: FromQuery[str | None] = None,
        since: FromQuery[Instant | None] = None,
        until: FromQuery[Instant | None] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> s.EventPage:
        require(principal, *READ_SCOPES)
        subject_id, _ = await customers.resolve(core, external_id)
        page = await events.read(
            core,
            subject_id,
            principal,
            name=name,
            since=plain(since),
            until=plain(until),
            cursor=cursor,
            limit=limit,
        )
        return wire(page, s.EventPage)
