"""SIGKILL during a write load, 20 times per engine: nothing acknowledged is lost, the chain holds.

The real service runs as a subprocess on one database reused across rounds. Each round starts it,
drives concurrent customer and consent writes over HTTP, kills it with SIGKILL at a random moment
while requests are in flight, then opens the database directly and checks: every acknowledged
write is there, the audit chain verifies end to end, its head matches, and every change has its
audit entry and every entry its change (same transaction: both or neither).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from consentry.audit.chain import GENESIS_HASH, AuditEntry, verify

POSTGRES_URL = os.environ.get(
    "CONSENTRY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    b.strip() for b in os.environ.get("CONSENTRY_TEST_BACKENDS", "sqlite,postgres").split(",")
]
SEED = int(os.environ.get("CONSENTRY_CRASH_SEED", "20251123"))
ROUNDS = 20
WORKERS = 12
KILL_AFTER = (0.1, 0.8)  # seconds after the load starts
ROUND_TIMEOUT = 30.0
START_TIMEOUT = 30.0
KEY = re.compile(r"\bck_[0-9a-f]{16}_[A-Za-z0-9_-]+")
PURPOSES = ("analytics", "personalization", "sale_or_share", "marketing_email")
DECISIONS = ("granted", "denied", "withdrawn")

pytestmark = pytest.mark.slow


# -- the database under test -------------------------------------------------------------------


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}search_path={schema}"


@dataclass(frozen=True)
class Store:
    engine: str
    url: str
    schema: str = ""  # PostgreSQL only
    sqlite_dir: Path | None = None  # SQLite only: holds consentry.sqlite and keys.sqlite


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        folder = tmp_path / "db"
        yield Store("sqlite", f"sqlite:///{folder / 'consentry.sqlite'}", sqlite_dir=folder)
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield Store("postgres", with_search_path(POSTGRES_URL, schema), schema=schema)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE")
        await conn.close()


# -- what the database holds after a crash -----------------------------------------------------


@dataclass
class Snapshot:
    audit: list[dict[str, Any]]
    head: dict[str, Any]
    subjects: dict[str, str]  # external_id -> subject id
    records: list[dict[str, Any]]  # id, subject_id, purpose, channel, recorded_at
    state: dict[str, str]  # consent_state key -> record id
    key_subjects: set[str]  # subject ids that have a data key


AUDIT_SQL = (
    "SELECT seq, at, actor, action, target, details, policy_version, prev_hash, hash"
    " FROM audit_log ORDER BY seq"
)
RECORDS_SQL = "SELECT id, subject_id, purpose, channel, recorded_at FROM consent_records"


def utc(value: datetime | str) -> datetime:
    """A stored timestamp back as the aware UTC datetime the writer hashed."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _sqlite_rows(path: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)  # no type detection: we see what is stored
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


async def snapshot(store: Store) -> Snapshot:
    if store.sqlite_dir is not None:
        data = store.sqlite_dir / "consentry.sqlite"
        audit = _sqlite_rows(data, AUDIT_SQL)
        head = _sqlite_rows(data, "SELECT seq, hash FROM audit_head WHERE id = 1")
        subjects = _sqlite_rows(data, "SELECT id, external_id FROM subjects")
        records = _sqlite_rows(data, RECORDS_SQL)
        state = _sqlite_rows(data, "SELECT key, record_id FROM consent_state")
        keys = _sqlite_rows(store.sqlite_dir / "keys.sqlite", "SELECT subject_id FROM subject_keys")
    else:
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": store.schema})
        try:
            audit = [dict(r) for r in await conn.fetch(AUDIT_SQL)]
            head = [
                dict(r) for r in await conn.fetch("SELECT seq, hash FROM audit_head WHERE id = 1")
            ]
            subjects = [dict(r) for r in await conn.fetch("SELECT id, external_id FROM subjects")]
            records = [dict(r) for r in await conn.fetch(RECORDS_SQL)]
            state = [dict(r) for r in await conn.fetch("SELECT key, record_id FROM consent_state")]
            keys = [
                dict(r)
                for r in await conn.fetch(
                    f'SELECT subject_id FROM "{store.schema}_keys".subject_keys'
                )
            ]
        finally:
            await conn.close()
    assert len(head) == 1, "audit_head row is missing"
    for r in records:
        r["id"], r["subject_id"], r["recorded_at"] = (
            str(r["id"]),
            str(r["subject_id"]),
            utc(r["recorded_at"]),
        )
    return Snapshot(
        audit=audit,
        head=head[0],
        subjects={r["external_id"]: str(r["id"]) for r in subjects},
        records=records,
        state={r["key"]: str(r["record_id"]) for r in state},
        key_subjects={str(r["subject_id"]) for r in keys},
    )


def to_entry(r: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        int(r["seq"]),
        utc(r["at"]),
        r["actor"],
        r["action"],
        r["target"],
        json.loads(r["details"]),
        r["policy_version"],
        r["prev_hash"],
        r["hash"],
    )


def check_snapshot(snap: Snapshot, load: Load, where: str) -> None:
    """Every acknowledged write is present; the chain and its head agree; changes == entries."""
    missing = sorted(load.customers - snap.subjects.keys())
    assert not missing, f"{where}: acknowledged customers missing: {missing[:10]} ({len(missing)})"
    record_ids = {r["id"] for r in snap.records}
    missing = sorted(load.records - record_ids)
    assert not missing, f"{where}: acknowledged consent records missing: {missing[:10]}"

    entries = [to_entry(r) for r in snap.audit]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1)), f"{where}: seq gaps"
    broken = verify(entries)
    assert broken is None, f"{where}: audit chain broken: {broken}"
    last_seq, last_hash = (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS_HASH)
    assert (int(snap.head["seq"]), snap.head["hash"]) == (last_seq, last_hash), (
        f"{where}: audit_head {snap.head} != last entry ({last_seq}, {last_hash})"
    )

    audited_records = [
        d["record"]
        for e in entries
        if e.action == "consent.recorded"
        for d in e.details["decisions"]
    ]
    assert len(audited_records) == len(set(audited_records)), f"{where}: a record audited twice"
    assert set(audited_records) == record_ids, (
        f"{where}: ledger rows without entry {sorted(record_ids - set(audited_records))[:5]},"
        f" entries without ledger row {sorted(set(audited_records) - record_ids)[:5]}"
    )
    created = [e.target for e in entries if e.action == "customer.created"]
    subjects = {f"subject:{sid}" for sid in snap.subjects.values()}
    assert sorted(created) == sorted(subjects), f"{where}: customers and their entries differ"
    no_key = set(snap.subjects.values()) - snap.key_subjects
    assert not no_key, f"{where}: customers without a data key: {sorted(no_key)[:5]}"

    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(snap.records, key=lambda r: (r["recorded_at"], r["id"])):
        latest[f"{r['subject_id']}:{r['purpose']}:{r['channel']}"] = r
    assert snap.state == {k: r["id"] for k, r in latest.items()}, (
        f"{where}: consent_state differs from the ledger"
    )


# -- the service as a process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service_env(store: Store, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(
        CONSENTRY_DATA_DIR=str(data_dir),
        CONSENTRY_DATABASE_URL=store.url,
        CONSENTRY_RATE_LIMITS="off",
        CONSENTRY_LOG_LEVEL="warning",
    )
    return env


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    output: Path
    base: str

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


async def start(env: dict[str, str], output: Path) -> Service:
    """`python -m consentry.cli serve` on a free port, once /health answers."""
    port = free_port()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "consentry.cli", "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    service = Service(process, output, f"http://127.0.0.1:{port}")
    try:
        await wait_until_healthy(service)
    except BaseException:
        kill(process)
        raise
    return service


async def wait_until_healthy(service: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if (code := service.process.poll()) is not None:
                raise AssertionError(f"service exited with {code}:\n{service.text()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(service.base + "/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"service did not start:\n{service.text()}")
            await asyncio.sleep(0.05)


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# -- the write load ----------------------------------------------------------------------------


@dataclass
class Load:
    """What the service acknowledged (2xx) over all rounds, and what was cut off."""

    customers: set[str] = field(default_factory=set)
    customer_list: list[str] = field(default_factory=list)
    records: set[str] = field(default_factory=set)
    consent_requests: int = 0
    cut_off: int = 0
    cut_customers: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)

    def acknowledged(self) -> int:
        return len(self.customers) + self.consent_requests


@dataclass
class Round:
    number: int
    delay: float  # the kill comes this many seconds after the load starts
    killed: bool = False
    acknowledged: int = 0
    cut_off: int = 0


def customer_body(external_id: str) -> dict[str, Any]:
    return {"region": "EU", "identities": {"email": f"{external_id}@example.com"}}


def consent_body(rng: random.Random) -> dict[str, Any]:
    purposes = rng.sample(PURPOSES, rng.randint(1, 3))
    decisions = []
    for purpose in purposes:
        d: dict[str, Any] = {"purpose": purpose, "decision": rng.choice(DECISIONS)}
        if purpose == "marketing_email":
            d["channel"] = "email"
        decisions.append(d)
    return {"decisions": decisions, "evidence": {"ip": "203.0.113.7", "user_agent": "crash/1"}}


async def worker(client: httpx.AsyncClient, load: Load, rnd: Round, w: int, seed: int) -> None:
    """Write until the service is gone: one new customer, then consents for known customers."""
    rng = random.Random(seed)
    n = 0
    while True:
        creating = n % 3 == 0 or not load.customer_list
        if creating:
            external_id = f"r{rnd.number}-w{w}-{n}"
            call = client.put(f"/v1/customers/{external_id}", json=customer_body(external_id))
        else:
            external_id = rng.choice(load.customer_list)
            call = client.post(f"/v1/customers/{external_id}/consents", json=consent_body(rng))
        n += 1
        try:
            response = await call
        except httpx.TransportError as exc:
            if not rnd.killed:
                load.unexpected.append(f"round {rnd.number}: {exc!r} before the kill")
            load.cut_off += 1
            rnd.cut_off += 1
            if creating:
                load.cut_customers.add(external_id)
            return
        if not 200 <= response.status_code < 300:
            load.unexpected.append(f"round {rnd.number}: {response.status_code} {response.text}")
            return
        rnd.acknowledged += 1
        if creating:
            load.customers.add(external_id)
            load.customer_list.append(external_id)
        else:
            load.consent_requests += 1
            load.records.update(r["id"] for r in response.json()["records"])


async def kill_after(process: subprocess.Popen[bytes], rnd: Round) -> None:
    await asyncio.sleep(rnd.delay)
    rnd.killed = True
    os.kill(process.pid, signal.SIGKILL)


async def read_back(service: Service, key: str, load: Load, rng: random.Random) -> None:
    """A few acknowledged customers read back through the restarted service, identities too."""
    sample = rng.sample(load.customer_list, min(5, len(load.customer_list)))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=10) as client:
        for external_id in sample:
            r = await client.get(f"/v1/customers/{external_id}")
            assert r.status_code == 200, r.text
            assert r.json()["identities"] == {"email": f"{external_id}@example.com"}


async def run_round(service: Service, key: str, load: Load, rnd: Round, rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=WORKERS * 2)
    async with httpx.AsyncClient(
        base_url=service.base, headers=headers, timeout=10, limits=limits
    ) as client:
        tasks = [
            asyncio.create_task(worker(client, load, rnd, w, rng.randrange(2**32)))
            for w in range(WORKERS)
        ]
        killer = asyncio.create_task(kill_after(service.process, rnd))
        await asyncio.wait_for(asyncio.gather(killer, *tasks), ROUND_TIMEOUT)
    service.process.wait(timeout=10)


# -- the test ----------------------------------------------------------------------------------


async def test_sigkill_during_writes_loses_no_acknowledged_write(
    store: Store, tmp_path: Path
) -> None:
    """Killed 20 times mid-load, the service keeps every acknowledged write, and the audit chain
    (with its head) verifies after each kill: no change without its entry, no entry without it."""
    rng = random.Random(f"{SEED}:{store.engine}")
    kill_rng = random.Random(f"{SEED}:{store.engine}:kill")  # same delays whatever the load did
    env = service_env(store, tmp_path / "data")
    load = Load()
    rounds: list[Round] = []
    key = ""
    began = time.monotonic()
    service: Service | None = None
    try:
        for number in range(1, ROUNDS + 1):
            service = await start(env, tmp_path / f"round-{number}.out")
            if number == 1:
                keys = KEY.findall(service.text())
                assert len(keys) == 1, service.text()
                key = keys[0]
            elif load.customer_list:
                await read_back(service, key, load, rng)
            rnd = Round(number, kill_rng.uniform(*KILL_AFTER))
            rounds.append(rnd)
            await run_round(service, key, load, rnd, rng)
            assert service.process.returncode == -signal.SIGKILL, (
                f"round {number}: exited {service.process.returncode}:\n{service.text()}"
            )
            assert not load.unexpected, load.unexpected[:5]
            where = f"{store.engine} round {number} (kill after {rnd.delay:.2f}s)"
            check_snapshot(await snapshot(store), load, where)
    finally:
        if service is not None:
            kill(service.process)
    elapsed = time.monotonic() - began

    snap = await snapshot(store)
    in_doubt = len(load.cut_customers & snap.subjects.keys())
    overlapped = sum(1 for r in rounds if r.acknowledged > 0 and r.cut_off > 0)
    print(
        f"\ncrash[{store.engine}] seed={SEED}: {len(rounds)} rounds in {elapsed:.1f}s,"
        f" {overlapped} with acknowledged and cut-off writes"
        f" (kill after {min(r.delay for r in rounds):.2f}-{max(r.delay for r in rounds):.2f}s);"
        f" acknowledged"
        f" {len(load.customers)} customers + {load.consent_requests} consent requests"
        f" ({len(load.records)} records); {load.cut_off} requests cut off"
        f" ({in_doubt} cut-off customer creations committed anyway);"
        f" {len(snap.audit)} audit entries"
    )
    assert len(rounds) == ROUNDS
    assert overlapped >= ROUNDS // 2, [(r.delay, r.acknowledged, r.cut_off) for r in rounds]
    assert load.acknowledged() >= ROUNDS * 10
