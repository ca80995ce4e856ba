"""Credentials at rest (both engines): a new API key's secret and a customer token are shown
once and stored nowhere, not even in a stored idempotent answer; stored answers expire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import FrozenClock
from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.storage.keystore import split_search_path
from consentry.storage.retention import IdempotencyPurger
from consentry.storage.schema import migrate
from consentry.storage.writer import WriteTx

Client = httpx.AsyncClient
NEW_KEY = ("/v1/api-keys", {"name": "ci", "scopes": ["backend:write"]})
NEW_TOKEN = ("/v1/customers/c-1/token", {"ttl_seconds": 600})
DOUBLE_OPT_IN = (  # the answer holds a confirmation token
    "/v1/customers/c-1/consents",
    {"decisions": [{"purpose": "marketing_email", "decision": "granted", "channel": "email"}]},
)


@pytest.fixture
async def customer(client: Client) -> str:
    r = await client.put("/v1/customers/c-1", json={"region": "EU"})
    assert r.status_code == 201, r.text
    return "c-1"


def secrets_of(answer: dict[str, Any]) -> list[str]:
    """The secret parts of a first answer: a key's secret, a token and its signature, or the
    confirmation tokens of a double opt-in."""
    if "key" in answer:
        return [answer["key"], answer["key"].split("_", 2)[2]]
    if "confirmations" in answer:
        assert answer["confirmations"]
        return [c["token"] for c in answer["confirmations"]]
    return [answer["token"], answer["token"].rsplit(".", 1)[1]]


async def table_rows(core: Core) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Every row of every table the service has, on either engine, key store included."""
    if core.db.is_postgres:
        schema = core.db.schema_name
        keys = split_search_path(core.settings.resolved_keystore_url)[1]
        tables = await core.db.fetch(
            "SELECT table_schema AS s, table_name AS t FROM information_schema.tables"
            " WHERE table_schema IN (?, ?)",
            schema,
            keys,
        )
        assert {t["s"] for t in tables} == {schema, keys}
        for t in tables:
            for row in await core.db.fetch(f'SELECT * FROM "{t["s"]}"."{t["t"]}"'):
                yield t["t"], row
        return
    tables = await core.db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
    for t in tables:
        for row in await core.db.fetch(f'SELECT * FROM "{t["name"]}"'):
            yield t["name"], row


def holds(value: Any, secret: str) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return secret.encode() in bytes(value)
    return secret in str(value)


@pytest.mark.parametrize(
    ("url", "body"), [NEW_KEY, NEW_TOKEN, DOUBLE_OPT_IN], ids=["api-key", "token", "opt-in"]
)
async def test_no_secret_is_stored_anywhere(
    client: Client, core: Core, customer: str, tmp_path: Path, url: str, body: dict[str, Any]
) -> None:
    """After an idempotent create and its replay, the secret is in no table, file or WAL."""
    headers = {"Idempotency-Key": "create-1"}
    first = await client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(url, json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    secrets = secrets_of(first.json())
    found = [
        (table, secret)
        async for table, row in table_rows(core)
        for value in row.values()
        for secret in secrets
        if holds(value, secret)
    ]
    assert found == []
    if not core.db.is_postgres:  # the raw files too: data store, key store, their WAL and SHM
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-wal") for p in files)
        leaked = [(p.name, s) for p in files for s in secrets if s.encode() in p.read_bytes()]
        assert leaked == []


@pytest.mark.parametrize(
    ("url", "body", "count"),
    [
        (*NEW_KEY, "SELECT COUNT(*) AS n FROM api_keys"),
        (*NEW_TOKEN, "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'customer_token.issued'"),
    ],
    ids=["api-key", "token"],
)
async def test_replay_of_a_secret_is_a_409_and_records_nothing(
    client: Client, core: Core, customer: str, url: str, body: dict[str, Any], count: str
) -> None:
    """A retry of a create whose answer held a secret says it was shown once, as problem+json."""
    headers = {"Idempotency-Key": "create-2"}
    first = await client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    before = await core.db.fetchrow(count)
    again = await client.post(url, json=body, headers=headers)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.headers["idempotent-replayed"] == "true"
    assert "shown once" in again.json()["detail"]
    assert await core.db.fetchrow(count) == before


async def test_a_double_opt_in_replays_its_confirmation_token(
    client: Client, customer: str
) -> None:
    """A retried consent write that started a double opt-in replays the same answer, token too."""
    headers = {"Idempotency-Key": "opt-in-1"}
    first = await client.post(DOUBLE_OPT_IN[0], json=DOUBLE_OPT_IN[1], headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(DOUBLE_OPT_IN[0], json=DOUBLE_OPT_IN[1], headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.status_code, again.content) == (201, first.content)


async def test_replay_of_a_key_names_the_key_to_revoke(client: Client) -> None:
    """The 409 for a replayed key creation names the key, so it can be revoked if lost."""
    headers = {"Idempotency-Key": "create-3"}
    first = await client.post(NEW_KEY[0], json=NEW_KEY[1], headers=headers)
    key_id = first.json()["api_key"]["id"]
    again = await client.post(NEW_KEY[0], json=NEW_KEY[1], headers=headers)
    assert key_id in again.json()["detail"]


# -- retention ---------------------------------------------------------------------------------

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
GRANT = {"decisions": [{"purpose": "analytics", "decision": "granted"}]}


@pytest.fixture
async def frozen(settings: Settings) -> AsyncIterator[tuple[Client, FrozenClock, Core]]:
    """A service on a frozen clock, stored answers kept 2 hours, with customer c-1."""
    clock = FrozenClock(START)
    kept = replace(settings, idempotency_retention_hours=2)
    core = await open_core(kept, clock=clock)
    try:
        key = await bootstrap_admin_key(core)
        assert key is not None
        app = create_app(kept, core=core, clock=clock)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            assert (await client.put("/v1/customers/c-1", json={})).status_code == 201
            yield client, clock, core
    finally:
        await close_core(core)


async def stored_answers(core: Core) -> int:
    row = await core.db.fetchrow("SELECT COUNT(*) AS n FROM idempotency_keys")
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize(("hours", "replayed"), [(1.9, True), (2.1, False)])
async def test_a_stored_answer_replays_only_within_retention(
    frozen: tuple[Client, FrozenClock, Core], hours: float, replayed: bool
) -> None:
    """A retry within the retention replays; after it, the same key is a new request."""
    client, clock, _ = frozen
    url, headers = "/v1/customers/c-1/consents", {"Idempotency-Key": "grant-1"}
    first = await client.post(url, json=GRANT, headers=headers)
    assert first.status_code == 201
    clock.advance(hours=hours)
    again = await client.post(url, json=GRANT, headers=headers)
    assert again.status_code == 201
    assert ("idempotent-replayed" in again.headers) is replayed
    assert (again.content == first.content) is replayed


async def test_expired_answers_are_purged(frozen: tuple[Client, FrozenClock, Core]) -> None:
    """A purge deletes the stored answers older than the retention and keeps the rest."""
    client, clock, core = frozen
    url = "/v1/customers/c-1/consents"
    await client.post(url, json=GRANT, headers={"Idempotency-Key": "old"})
    clock.advance(hours=1.5)
    await client.post(url, json=GRANT, headers={"Idempotency-Key": "new"})
    assert await stored_answers(core) == 2
    clock.advance(hours=1)
    assert await core.purger.purge() == 1
    assert await stored_answers(core) == 1


async def test_a_started_purger_purges_on_its_own(
    frozen: tuple[Client, FrozenClock, Core],
) -> None:
    """A running purger deletes answers as they expire, without being asked, until stopped."""
    client, clock, core = frozen
    purger = IdempotencyPurger(core.writer, core.purger.retention, every_seconds=0.01)
    await purger.start()
    try:
        for n in range(2):
            await client.post(
                "/v1/customers/c-1/consents", json=GRANT, headers={"Idempotency-Key": f"k{n}"}
            )
            assert await stored_answers(core) == 1
            clock.advance(hours=3)
            async with asyncio.timeout(5):
                while await stored_answers(core):
                    await asyncio.sleep(0.01)
    finally:
        await purger.stop()


# -- upgrade -----------------------------------------------------------------------------------

OLD_ANSWERS = {  # as an older version stored them: the secret in clear
    "old-key": b'{"key":"ck_0123456789abcdef_OLDSECRETOLDSECRET","api_key":{"id":"0123"}}',
    "old-token": b'{"token":"eyJzdWIiOiJ4In0.OLDTOKENSIGNATURE","expires_at":"2026-01-01"}',
    "old-consent": b'{"records":[]}',
}


async def test_answers_an_older_version_stored_with_secrets_are_scrubbed(
    core: Core, tmp_path: Path
) -> None:
    """Upgrading deletes stored answers that hold a key or token, and leaves their bytes nowhere."""

    async def job(tx: WriteTx) -> None:
        for key, body in OLD_ANSWERS.items():
            await tx.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_at)"
                " VALUES (?, ?, 201, ?, ?)",
                key,
                "f" * 64,
                body,
                tx.now,
            )
        await tx.execute(  # as before migrations were recorded
            "DELETE FROM consentry_meta WHERE name IN"
            " ('idempotency_scrubbed', 'migration 0001_baseline')"
        )

    await core.writer.submit(job)
    await migrate(core.db)
    rows = await core.db.fetch("SELECT key FROM idempotency_keys")
    assert sorted(r["key"] for r in rows) == ["old-consent"]
    if not core.db.is_postgres:
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        secrets = (b"OLDSECRETOLDSECRET", b"OLDTOKENSIGNATURE")
        assert [(p.name, s) for p in files for s in secrets if s in p.read_bytes()] == []


@pytest.mark.parametrize("hours", [0, -1])
async def test_a_retention_under_an_hour_is_refused_at_start(
    settings: Settings, hours: int
) -> None:
    """The service does not start with a retention under one hour, and names the variable."""
    with pytest.raises(ValueError, match="CONSENTRY_IDEMPOTENCY_RETENTION_HOURS"):
        await open_core(replace(settings, idempotency_retention_hours=hours))


def test_the_retention_is_read_from_the_environment() -> None:
    """CONSENTRY_IDEMPOTENCY_RETENTION_HOURS sets the retention."""
    env = {"CONSENTRY_IDEMPOTENCY_RETENTION_HOURS": "48"}
    assert Settings.from_env(env).idempotency_retention_hours == 48
