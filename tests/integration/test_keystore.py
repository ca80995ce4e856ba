"""The per-subject data-key store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from consentry.crypto.envelope import DecryptionError, decrypt, encrypt, unwrap_key
from consentry.crypto.secrets import kek_id
from consentry.settings import Settings
from consentry.storage.keystore import (
    KeyStore,
    PostgresKeyStore,
    SQLiteKeyStore,
    open_keystore,
    split_search_path,
)

KEK = bytes(range(32))


@pytest.fixture
def keystore_url(database_url: str, tmp_path: Path) -> str:
    return Settings(database_url=database_url, data_dir=tmp_path).resolved_keystore_url


@pytest.fixture
async def keys(keystore_url: str) -> AsyncIterator[KeyStore]:
    async with open_keystore(keystore_url, KEK) as store:
        yield store


async def _raw_rows(url: str) -> list[tuple[str, str, bytes]]:
    """Every row of subject_keys, read straight from the backend, bypassing KeyStore."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            rows = conn.execute("SELECT subject_id, kek_id, wrapped FROM subject_keys").fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows]
    dsn, schema = split_search_path(url)
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch(
            f'SELECT subject_id, kek_id, wrapped FROM "{schema}".subject_keys'
        )
    finally:
        await conn.close()
    return [(r["subject_id"], r["kek_id"], bytes(r["wrapped"])) for r in records]


def test_open_keystore_picks_backend(tmp_path: Path) -> None:
    """The URL scheme selects the SQLite or PostgreSQL store, and others are refused."""
    assert isinstance(open_keystore(f"sqlite:///{tmp_path}/k.sqlite", KEK), SQLiteKeyStore)
    pg = open_keystore("postgres://u@h/db?search_path=abc_keys&sslmode=disable", KEK)
    assert isinstance(pg, PostgresKeyStore)
    assert pg.schema == "abc_keys"
    assert "search_path" not in pg.dsn
    assert "sslmode=disable" in pg.dsn
    with pytest.raises(Exception, match="sqlite"):
        open_keystore("mysql://x", KEK)


async def test_create_get_destroy(keys: KeyStore) -> None:
    """A created key is returned by get until destroyed, after which get gives None."""
    assert await keys.get("s1") is None
    dek = await keys.create("s1")
    assert len(dek) == 32
    assert await keys.create("s1") == dek
    assert await keys.get("s1") == dek
    assert await keys.count() == 1
    assert await keys.destroy("s1") is True
    assert await keys.get("s1") is None
    assert await keys.destroy("s1") is False
    assert await keys.count() == 0


async def test_get_many(keys: KeyStore) -> None:
    """get_many returns the live keys among the ids asked for and leaves out the others."""
    made = {sid: await keys.create(sid) for sid in ("a", "b", "c")}
    await keys.destroy("b")
    assert await keys.get_many(["a", "b", "c", "missing", "a"]) == {
        "a": made["a"],
        "c": made["c"],
    }
    assert await keys.get_many([]) == {}


async def test_get_many_uncached_in_large_batches(keystore_url: str) -> None:
    """get_many reads more ids than one SQL batch holds, without a cache."""
    async with open_keystore(keystore_url, KEK, cache_size=0) as store:
        made = {f"s{i}": await store.create(f"s{i}") for i in range(1200)}
        found = await store.get_many([*made, "nobody"])
    assert found == made


async def test_destroy_is_seen_by_a_fresh_instance(keystore_url: str, keys: KeyStore) -> None:
    """After destroy, a new KeyStore with an empty cache finds no key either."""
    await keys.create("s1")
    await keys.create("s2")
    await keys.destroy("s1")
    async with open_keystore(keystore_url, KEK) as fresh:
        assert await fresh.get("s1") is None
        assert await fresh.get("s2") is not None
        assert await fresh.count() == 1


async def test_destroy_shreds_ciphertext(keystore_url: str, keys: KeyStore) -> None:
    """Once a key is destroyed, nothing in the store can decrypt the subject's ciphertext."""
    dek = await keys.create("s1")
    blob = encrypt(dek, b"alice@example.com", aad="s1:email")
    await keys.destroy("s1")
    async with open_keystore(keystore_url, KEK) as fresh:
        assert await fresh.get("s1") is None
        replacement = await fresh.create("s1")
    with pytest.raises(DecryptionError):
        decrypt(replacement, blob, aad="s1:email")


async def test_concurrent_create_returns_one_key(keystore_url: str) -> None:
    """Concurrent creates for one subject, from separate stores, all get the same key."""
    stores = [open_keystore(keystore_url, KEK, cache_size=0) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        results = await asyncio.gather(*(s.create("s1") for s in stores for _ in range(5)))
        assert len(set(results)) == 1
        assert await stores[0].count() == 1
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_create_in_one_store(keys: KeyStore) -> None:
    """Concurrent creates on one store instance all get the same key."""
    results = await asyncio.gather(*(keys.create("s9") for _ in range(20)))
    assert len(set(results)) == 1
    assert await keys.get("s9") == results[0]


async def test_stored_row_holds_only_wrapped_key(keystore_url: str, keys: KeyStore) -> None:
    """The row in the store holds the key wrapped by the KEK, tagged with its id, never raw."""
    dek = await keys.create("s1")
    rows = await _raw_rows(keystore_url)
    assert len(rows) == 1
    subject_id, stored_kek_id, wrapped = rows[0]
    assert (subject_id, stored_kek_id) == ("s1", kek_id(KEK))
    assert dek not in wrapped
    assert dek.hex().encode() not in wrapped
    assert unwrap_key(KEK, wrapped, subject_id="s1") == dek


async def test_keys_survive_close_and_reopen(keystore_url: str) -> None:
    """Keys written before close are read back after reopening the store."""
    store = open_keystore(keystore_url, KEK)
    await store.open()
    made = {sid: await store.create(sid) for sid in ("a", "b")}
    await store.close()
    await store.open()
    try:
        assert await store.get_many(["a", "b"]) == made
    finally:
        await store.close()


async def test_wrong_kek_cannot_read_keys(keystore_url: str, keys: KeyStore) -> None:
    """A store opened with another KEK refuses the stored keys instead of returning garbage."""
    await keys.create("s1")
    async with open_keystore(keystore_url, bytes(32)) as other:
        with pytest.raises(DecryptionError):
            await other.get("s1")


async def test_key_store_lives_apart_from_data_store(database_url: str, tmp_path: Path) -> None:
    """The default key store is a different SQLite file or PostgreSQL schema from the data."""
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    url = settings.resolved_keystore_url
    assert url != database_url
    if settings.is_postgres:
        assert split_search_path(url)[1] == split_search_path(database_url)[1] + "_keys"
    else:
        assert url.endswith("keys.sqlite")


async def test_sqlite_file_is_private(tmp_path: Path) -> None:
    """The SQLite key file is created owner-only and runs in WAL mode."""
    path = tmp_path / "sub" / "keys.sqlite"
    async with SQLiteKeyStore(path, KEK) as store:
        await store.create("s1")
    assert path.stat().st_mode & 0o777 == 0o600
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_use_before_open_is_refused(tmp_path: Path) -> None:
    """Calling a store that is not open raises a clear error."""
    store = open_keystore(f"sqlite:///{tmp_path}/k.sqlite", KEK)
    with pytest.raises(RuntimeError, match="not open"):
        await store.get("s1")


class _SlowReadStore(SQLiteKeyStore):
    """Holds every read open until told to go on, to race a destroy against it."""

    go_on: asyncio.Event

    async def _fetch(self, subject_id: str) -> bytes | None:
        stored = await super()._fetch(subject_id)
        await self.go_on.wait()
        return stored


async def test_read_racing_destroy_does_not_recache(tmp_path: Path) -> None:
    """A read that fetched the key before a destroy does not put it back in the cache."""
    async with _SlowReadStore(tmp_path / "keys.sqlite", KEK) as store:
        store.go_on = asyncio.Event()
        store.go_on.set()
        await store.create("s1")
        await store.destroy("s1")
        await store.create("s1")
        store._cache.clear()
        store.go_on.clear()
        reader = asyncio.create_task(store.get("s1"))
        await asyncio.sleep(0.05)
        assert await store.destroy("s1") is True
        store.go_on.set()
        assert await reader is not None
        assert await store.get("s1") is None
