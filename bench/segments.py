"""Segment evaluation: count the members of a segment over many customers and events.

    python bench/segments.py                       # PostgreSQL 1,000,000 / 10,000,000; SQLite
                                                   # 100,000 / 1,000,000; 3 runs each
    python bench/segments.py --backend postgres --customers 200000 --events 2000000 --runs 5

The segment is the issue's example (without monthly_spend, which is sensitive and refused):
plan = "pro" AND upgraded_at within 30 days AND seats > 5 AND at least 5 "feature_used" events
with feature = "reports" in the last 30 days, among customers whose consent covers
marketing_email, compiled by the plugin exactly as the API runs it. Data is bulk-loaded (COPY on
PostgreSQL, executemany in one transaction on SQLite) into a fresh schema or file, analysed,
then timed. Medians print with the DESIGN.md target (PostgreSQL: <= 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from consentry_segments import store
from consentry_segments.filters import parse

from consentry.policy.loader import load_policy
from consentry.query import members
from consentry.settings import DEFAULT_POLICY
from consentry.storage.database import Database
from consentry.storage.schema import migrate

POSTGRES_URL = os.environ.get(
    "CONSENTRY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FILTER: dict[str, Any] = {
    "and": [
        {"attr": "plan", "op": "=", "value": "pro"},
        {"attr": "upgraded_at", "op": "within_days", "value": 30},
        {"attr": "seats", "op": ">", "value": 5},
        {
            "events": {
                "name": "feature_used",
                "where": [{"prop": "feature", "op": "=", "value": "reports"}],
                "last_days": 30,
            },
            "op": ">=",
            "value": 5,
        },
    ]
}
REGIONS = ["EU", "EU", "EU", "US", "US-CA", "JP", "UK"]
PLANS = ["free", "free", "pro", "team"]
EVENT_NAMES = ["feature_used", "feature_used", "page_view", "login"]
FEATURES = ["reports", "reports", "billing", "export"]
CHUNK = 200_000


def wider_policy(directory: Path) -> Path:
    """The default policy with behavior data in marketing_email (events are behavior data)."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        "    categories: [contact, identity, profile]\n    channels: [email]",
        "    categories: [contact, identity, profile, behavior]\n    channels: [email]",
    )
    path = directory / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def subjects(n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        attrs = {
            "plan": rng.choice(PLANS),
            "upgraded_at": (NOW - timedelta(days=rng.uniform(0, 120))).isoformat(),
            "seats": rng.randint(1, 20),
        }
        yield (_uuid(rng), f"c{i}", rng.choice(REGIONS), json.dumps(attrs), NOW, NOW, 1)


def consent_rows(ids: list[uuid.UUID], rng: random.Random) -> Iterator[tuple[Any, ...]]:
    for sid in ids:
        roll = rng.random()
        if roll < 0.3:
            continue  # no record: region default
        decision = "granted" if roll < 0.85 else rng.choice(["withdrawn", "denied", "pending"])
        notice = "2" if rng.random() < 0.9 else "1"
        at = NOW - timedelta(days=rng.uniform(1, 900))
        expires = at + timedelta(days=730) if decision == "granted" else None
        yield (
            f"{sid}:marketing_email:",
            sid,
            "marketing_email",
            "",
            decision,
            "consent",
            notice,
            "api",
            _uuid(rng),
            at,
            expires,
        )


def events(ids: list[uuid.UUID], n: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Cheap to make: times from a precomputed list (one a minute over 45 days)."""
    count = len(ids)
    times = [NOW - timedelta(minutes=m) for m in range(45 * 24 * 60)]
    props = [json.dumps({"feature": f}) for f in FEATURES]
    names, bits, pick = EVENT_NAMES, rng.getrandbits, rng.randrange
    for _ in range(n):
        when = times[pick(len(times))]
        yield (
            uuid.UUID(int=bits(128)),
            ids[pick(count)],
            names[pick(len(names))],
            when,
            when,
            props[pick(len(props))],
        )


def chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


SUBJECT_COLUMNS = ["id", "external_id", "region", "attributes", "created_at", "updated_at"]
STATE_COLUMNS = [
    "key",
    "subject_id",
    "purpose",
    "channel",
    "decision",
    "legal_basis",
    "notice_version",
    "source",
    "record_id",
    "recorded_at",
    "expires_at",
]
EVENT_COLUMNS = ["id", "subject_id", "name", "occurred_at", "received_at", "properties"]


async def load_postgres(
    conn: asyncpg.Connection, schema: str, customers: int, n_events: int
) -> None:
    rng = random.Random(7)
    ids: list[uuid.UUID] = []
    for batch in chunks(subjects(customers, rng)):
        ids += [r[0] for r in batch]
        await conn.copy_records_to_table(
            "subjects",
            schema_name=schema,
            records=[r[:6] for r in batch],
            columns=SUBJECT_COLUMNS,
        )
    for batch in chunks(consent_rows(ids, rng)):
        await conn.copy_records_to_table(
            "consent_state", schema_name=schema, records=batch, columns=STATE_COLUMNS
        )
    for batch in chunks(events(ids, n_events, rng)):
        await conn.copy_records_to_table(
            "events", schema_name=schema, records=batch, columns=EVENT_COLUMNS
        )
    await conn.execute(f'ANALYZE "{schema}".subjects, "{schema}".events, "{schema}".consent_state')


def load_sqlite(path: str, customers: int, n_events: int) -> None:
    import sqlite3

    rng = random.Random(7)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    ids: list[uuid.UUID] = []
    conn.execute("BEGIN")
    for batch in chunks(subjects(customers, rng)):
        ids += [r[0] for r in batch]
        conn.executemany(
            "INSERT INTO subjects (id, external_id, region, attributes, created_at, updated_at,"
            " version) VALUES (?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    for batch in chunks(consent_rows(ids, rng)):
        conn.executemany(
            f"INSERT INTO consent_state ({', '.join(STATE_COLUMNS)})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    for batch in chunks(events(ids, n_events, rng)):
        conn.executemany(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)", batch
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


async def time_counts(db: Database, policy_path: Path, runs: int) -> tuple[list[float], int]:
    policy = load_policy(policy_path)
    segment = parse(policy, "marketing_email", FILTER)
    times: list[float] = []
    found = 0
    for _ in range(runs):
        started = time.perf_counter()
        found = await members.count(
            db, policy, segment.purpose, segment.root, postgres=db.is_postgres, now=NOW
        )
        times.append(time.perf_counter() - started)
    return times, found


async def bench_postgres(customers: int, n_events: int, runs: int, tmp: Path) -> dict[str, Any]:
    schema = "bench_seg_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        db = Database(f"{POSTGRES_URL}?search_path={schema}")
        await db.start()
        try:
            await migrate(db, (store.SegmentTable,))
            started = time.perf_counter()
            await load_postgres(admin, schema, customers, n_events)
            load_s = time.perf_counter() - started
            times, found = await time_counts(db, wider_policy(tmp), runs)
        finally:
            await db.close()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    return _result("postgres", customers, n_events, load_s, times, found, target=3.0)


async def bench_sqlite(customers: int, n_events: int, runs: int, tmp: Path) -> dict[str, Any]:
    path = tmp / "segments.sqlite"
    db = Database(f"sqlite:///{path}")
    await db.start()
    try:
        await migrate(db, (store.SegmentTable,))
        started = time.perf_counter()
        await asyncio.to_thread(load_sqlite, str(path), customers, n_events)
        load_s = time.perf_counter() - started
        times, found = await time_counts(db, wider_policy(tmp), runs)
    finally:
        await db.close()
    return _result("sqlite", customers, n_events, load_s, times, found, target=None)


def _result(
    backend: str,
    customers: int,
    n_events: int,
    load_s: float,
    times: list[float],
    found: int,
    *,
    target: float | None,
) -> dict[str, Any]:
    median = statistics.median(times)
    verdict = (
        ""
        if target is None
        else (" (target <= 3 s: met)" if median <= target else " (target <= 3 s: MISSED)")
    )
    print(
        f"{backend:8} {customers:>10,} customers {n_events:>11,} events  load {load_s:6.1f} s"
        f"  segment count median {median:6.3f} s of {len(times)} runs"
        f" [{', '.join(f'{t:.3f}' for t in times)}]  members {found:,}{verdict}"
    )
    return {
        "backend": backend,
        "customers": customers,
        "events": n_events,
        "load_seconds": round(load_s, 2),
        "count_seconds": [round(t, 4) for t in times],
        "count_median_seconds": round(median, 4),
        "members": found,
        "target_seconds": target,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--customers", type=int, help="both backends (default: per backend)")
    parser.add_argument("--events", type=int, help="both backends (default: per backend)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("postgres", "both"):
            results.append(
                await bench_postgres(
                    args.customers or 1_000_000, args.events or 10_000_000, args.runs, Path(tmp)
                )
            )
        if args.backend in ("sqlite", "both"):
            results.append(
                await bench_sqlite(
                    args.customers or 100_000, args.events or 1_000_000, args.runs, Path(tmp)
                )
            )
    out = Path(__file__).parent / "results" / "segments.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
