"""Opening and closing the core: policy first, then secrets, data store, key store, writer,
checkpointer and the plugin host; and what a command on existing data finds missing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import structlog

from consentry.audit_log.tree import Checkpointer
from consentry.clock import Clock, system_clock
from consentry.core.runtime import Core
from consentry.crypto.secrets import load_or_create_secrets, missing_secret_files
from consentry.crypto.signing import SigningKey
from consentry.host.context import contexts
from consentry.host.manager import Plugins
from consentry.policy.loader import load_policy
from consentry.settings import NoData, Settings
from consentry.storage.database import Database
from consentry.storage.files import private_dir
from consentry.storage.keystore import open_keystore
from consentry.storage.retention import IdempotencyPurger
from consentry.storage.schema import migrate
from consentry.storage.writer import Writer

log = structlog.get_logger("consentry")

POINT_ELSEWHERE = (
    "\n  This command works on existing data and creates none. Point it at your data with"
    "\n  --data-dir DIR or CONSENTRY_DATA_DIR (CONSENTRY_DATABASE_URL for PostgreSQL);"
    "\n  `consentry serve` or `consentry migrate --create` starts a new data folder."
)


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.sqlite_path}"


def load_plugins(settings: Settings) -> Plugins:
    enabled, disabled = settings.plugin_names()
    return Plugins.load(
        enabled,
        disabled,
        timeout=settings.plugin_timeout_seconds,
        sources=settings.plugin_sources,
    )


def missing_data(settings: Settings, *, secrets: bool = True) -> str | None:
    """What is missing for a command that works on existing data, or None: the data folder,
    the SQLite data and key stores, a secret not configured and not in `data_dir/secrets`.
    (PostgreSQL's tables are checked once connected: `missing_tables`.)"""
    folder = settings.data_dir.resolve()
    where = f"no Consentry data at {folder}"
    if not settings.is_postgres:
        keys = Path(settings.resolved_keystore_url.removeprefix("sqlite:///"))
        for path in (settings.sqlite_path, keys):
            if not path.is_file():
                return f"{where} (no database {path.resolve()}).{POINT_ELSEWHERE}"
    missing = missing_secret_files(settings) if secrets else []
    if missing:
        return (
            f"{where}: the secret {missing[0].resolve()} is missing, and a new one would not"
            f" open the data it protects.{POINT_ELSEWHERE}"
        )
    return None


async def missing_tables(db: Database) -> str | None:
    """What is missing if the data store lacks Consentry's tables (the audit head is made with
    them), or None."""
    if db.is_postgres:
        sql = (
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name = ?"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
    if await db.fetchrow(sql, "audit_head") is not None:
        return None
    return (
        "the database CONSENTRY_DATABASE_URL names has no Consentry tables: run"
        f" `consentry migrate` there first.{POINT_ELSEWHERE}"
    )


async def open_core(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    plugins: Plugins | None = None,
    create: bool = True,
) -> Core:
    """Load and check the policy first: a broken policy stops the start with its message.
    `create=False`: raise `NoData` rather than create a data folder, secrets or tables."""
    if settings.idempotency_retention_hours < 1:
        raise ValueError("CONSENTRY_IDEMPOTENCY_RETENTION_HOURS must be at least 1 (hours)")
    policy = load_policy(settings.policy_path)
    if not create and (problem := missing_data(settings)):
        raise NoData(problem)
    if create and (not settings.is_postgres or missing_secret_files(settings)):
        private_dir(settings.data_dir)  # owner-only (0700)
    secrets = load_or_create_secrets(settings)
    db = Database(database_url(settings))
    await db.start()
    if not create and (problem := await missing_tables(db)):
        await db.close()
        raise NoData(problem)
    plugins = plugins if plugins is not None else load_plugins(settings)
    await migrate(db, tuple(table for _, table in plugins.registry.tables))
    keys = open_keystore(settings.resolved_keystore_url, secrets.kek)
    await keys.open()
    retention = timedelta(hours=settings.idempotency_retention_hours)
    writer = Writer(
        db,
        clock=clock,
        policy_version=lambda: policy.version,
        max_batch=settings.group_commit_max,
        idempotency_retention=retention,
    )
    await writer.start()
    checkpointer = Checkpointer(db, writer, SigningKey(secrets.signing_seed), clock)
    await checkpointer.start()
    purger = IdempotencyPurger(writer, retention)
    await purger.start()
    core = Core(settings, policy, db, keys, secrets, writer, clock, checkpointer, plugins, purger)
    core.plugin_context = contexts(core)
    return core


async def close_core(core: Core) -> None:
    await core.background.drain()
    await core.purger.stop()
    await core.checkpointer.stop()
    await core.writer.stop()
    await core.keys.close()
    await core.db.close()
