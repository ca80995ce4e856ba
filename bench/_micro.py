"""In-process figures: gate decisions/s, and the machine's raw durable commit rates."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from consentry.domain.consent import ConsentState, Decision, Preferences
from consentry.domain.decision import evaluate
from consentry.domain.purposes import Policy
from consentry.policy.loader import load_policy

POLICY = Path(__file__).resolve().parents[1] / "policies" / "default.yaml"
BATCH = 1_000
WARM_UP_S = 0.5


def _state(policy: Policy, purpose: str, channel: str, decision: Decision) -> ConsentState:
    spec = policy.purposes[purpose]
    return ConsentState(
        purpose=purpose,
        channel=channel,
        decision=decision,
        legal_basis=spec.legal_basis.value,
        notice_version=spec.current_notice.version,
        source="api",
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        record_id=uuid4(),
    )


def decision_cases(policy: Policy) -> list[dict[str, Any]]:
    """The paths a gate takes: granted, opt-in default, withdrawn on a channel, other bases."""
    states = {
        ("analytics", ""): _state(policy, "analytics", "", Decision.GRANTED),
        ("marketing_email", "email"): _state(
            policy, "marketing_email", "email", Decision.WITHDRAWN
        ),
    }
    prefs = Preferences(channels={"sms": False})
    return [
        {"region": "EU", "purpose": "analytics", "states": states},
        {"region": "EU", "purpose": "personalization", "states": states},
        {"region": "US", "purpose": "marketing_email", "channel": "email", "states": states},
        {"region": "EU", "purpose": "product_updates", "states": {}, "preferences": prefs},
        {"region": "JP", "purpose": "essential", "channel": "email", "states": {}},
    ]


def gate_decisions_per_s(seconds: float) -> float:
    """Call `evaluate` in a tight loop over the case mix for about `seconds`."""
    policy = load_policy(POLICY)
    cases = decision_cases(policy)
    now = datetime.now(UTC) + timedelta(days=1)
    warm_until = time.perf_counter() + WARM_UP_S  # the first half second reads low: not timed
    while time.perf_counter() < warm_until:
        for i in range(BATCH):
            evaluate(policy, now=now, **cases[i % len(cases)])
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for i in range(BATCH):
            evaluate(policy, now=now, **cases[i % len(cases)])
        count += BATCH
    return count / (time.perf_counter() - started)


def sqlite_commits_per_s(seconds: float) -> float:
    """Durable single-row commits: WAL, synchronous=FULL, one INSERT per transaction."""
    with tempfile.TemporaryDirectory(prefix="consentry-bench-") as folder:
        conn = sqlite3.connect(Path(folder) / "commits.sqlite", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            return _commit_loop(conn, seconds)
        finally:
            conn.close()


def _commit_loop(conn: sqlite3.Connection, seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 64,))
        conn.execute("COMMIT")
        count += 1
    return count / (time.perf_counter() - started)


async def _pg_commits(url: str, seconds: float) -> tuple[float, dict[str, str]]:
    import asyncpg

    schema = f"bench_commits_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(url, timeout=10)
    try:
        settings = {
            name: str(await conn.fetchval(f"SHOW {name}"))
            for name in ("fsync", "synchronous_commit", "wal_sync_method")
        }
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.t (id bigserial PRIMARY KEY, v text NOT NULL)")
        insert = f"INSERT INTO {schema}.t (v) VALUES ($1)"
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await conn.execute(insert, "x" * 64)  # autocommit: one transaction each
            count += 1
        return count / (time.perf_counter() - started), settings
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def postgres_commits_per_s(url: str, seconds: float) -> tuple[float, dict[str, str]]:
    """Single-row commits on one asyncpg connection, and the server's durability settings."""
    return asyncio.run(_pg_commits(url, seconds))
