"""Events over the API on both engines: one, batches (all or nothing), filters, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

Client = httpx.AsyncClient
T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def at(hours: int) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def customers(client: Client) -> list[str]:
    for external_id in ("c-1", "c-2"):
        r = await client.put(f"/v1/customers/{external_id}", json={"region": "EU"})
        assert r.status_code == 201, r.text
    return ["c-1", "c-2"]


async def events_of(client: Client, external_id: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/customers/{external_id}/events", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_one_event(client: Client, customers: list[str]) -> None:
    """One event is stored with its name, time and properties, and read back."""
    r = await client.post(
        "/v1/customers/c-1/events",
        json={"name": "payment_failed", "occurred_at": at(0), "properties": {"amount": 12.5}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 1
    [event] = await events_of(client, "c-1")
    assert event["id"] == r.json()["ids"][0]
    assert event["name"] == "payment_failed"
    assert event["properties"] == {"amount": 12.5}
    assert datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")) == T0
    assert await events_of(client, "c-2") == []


async def test_event_without_time_gets_the_receive_time(
    client: Client, customers: list[str]
) -> None:
    """An event sent without occurred_at is stamped with the time it was received."""
    r = await client.post("/v1/customers/c-1/events", json={"name": "feature_used"})
    assert r.status_code == 201, r.text
    [event] = await events_of(client, "c-1")
    assert event["occurred_at"] == event["received_at"]


async def test_batch(client: Client, customers: list[str]) -> None:
    """A batch stores every event for each customer it names."""
    r = await client.post(
        "/v1/events",
        json={
            "events": [
                {"external_id": "c-1", "name": "feature_used", "occurred_at": at(1)},
                {"external_id": "c-2", "name": "feature_used", "occurred_at": at(2)},
                {
                    "external_id": "c-1",
                    "name": "upgraded",
                    "occurred_at": at(3),
                    "properties": {"plan": "pro"},
                },
            ]
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 3
    assert len(set(r.json()["ids"])) == 3
    assert [e["name"] for e in await events_of(client, "c-1")] == ["upgraded", "feature_used"]
    assert [e["name"] for e in await events_of(client, "c-2")] == ["feature_used"]


async def test_batch_is_all_or_nothing(client: Client, customers: list[str]) -> None:
    """One unknown external_id rejects the whole batch with 404 and stores nothing."""
    r = await client.post(
        "/v1/events",
        json={
            "events": [
                {"external_id": "c-1", "name": "feature_used"},
                {"external_id": "ghost", "name": "feature_used"},
                {"external_id": "c-2", "name": "feature_used"},
            ]
        },
    )
    assert r.status_code == 404, r.text
    assert "ghost" in r.json()["detail"]
    assert await events_of(client, "c-1") == []
    assert await events_of(client, "c-2") == []


async def test_invalid_events_name_the_field(client: Client, customers: list[str]) -> None:
    """A bad event name or a naive time is a 422 naming the event; an empty batch too."""
    r = await client.post("/v1/customers/c-1/events", json={"name": "Bad Name"})
    assert r.status_code == 422
    assert r.json()["field"] == "events[0].name"
    r = await client.post(
        "/v1/events",
        json={
            "events": [
                {"external_id": "c-1", "name": "ok"},
                {"external_id": "c-1", "name": "ok", "occurred_at": "2026-01-01T10:00:00"},
            ]
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "events[1].occurred_at"
    r = await client.post("/v1/events", json={"events": []})
    assert r.status_code == 422
    assert await events_of(client, "c-1") == []
    r = await client.post("/v1/customers/ghost/events", json={"name": "ok"})
    assert r.status_code == 404


async def test_filters_and_newest_first_paging(client: Client, customers: list[str]) -> None:
    """Filters by name, since (inclusive) and until (exclusive); pages newest first, no repeats."""
    batch = [
        {
            "external_id": "c-1",
            "name": "page_view" if h % 2 else "feature_used",
            "occurred_at": at(h),
        }
        for h in range(10)
    ]
    r = await client.post("/v1/events", json={"events": batch})
    assert r.status_code == 201, r.text

    everything = await events_of(client, "c-1")
    assert [e["occurred_at"] for e in everything] == sorted(
        (e["occurred_at"] for e in everything), reverse=True
    )
    assert len(everything) == 10

    views = await events_of(client, "c-1", name="page_view")
    assert len(views) == 5 and {e["name"] for e in views} == {"page_view"}

    window = await events_of(client, "c-1", since=at(3), until=at(7))
    hours = [
        int(
            (datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")) - T0)
            / timedelta(hours=1)
        )
        for e in window
    ]
    assert hours == [6, 5, 4, 3]

    both = await events_of(client, "c-1", name="feature_used", since=at(3))
    assert len(both) == 3  # hours 4, 6, 8

    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/customers/c-1/events", params=params)
        assert r.status_code == 200, r.text
        pages.append([e["id"] for e in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [4, 4, 2]
    flat = [i for p in pages for i in p]
    assert flat == [e["id"] for e in everything]

    r = await client.get("/v1/customers/c-1/events", params={"cursor": "bm9wZQ"})
    assert r.status_code == 422


async def test_paging_through_events_at_the_same_instant(
    client: Client, customers: list[str]
) -> None:
    """Events sharing one occurred_at still page without loss or repeats (ties broken by id)."""
    batch = [{"external_id": "c-1", "name": "tick", "occurred_at": at(0)} for _ in range(5)]
    r = await client.post("/v1/events", json={"events": batch})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/customers/c-1/events", params=params)
        seen += [e["id"] for e in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert sorted(seen) == sorted(ids)
