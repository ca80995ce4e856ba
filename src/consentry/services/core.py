"""The running core: policy, data store, key store, secrets and the writer, opened together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from consentry.clock import Clock, system_clock
from consentry.crypto.secrets import Secrets, load_or_create_secrets
from consentry.crypto.signing import SigningKey
from consentry.domain.policy import Policy
from consentry.plugins.manager import Plugins
from consentry.policy.loader import load_policy
from consentry.services.audit_tree import Checkpointer
from consentry.services.background import Background
from consentry.settings import Settings
from consentry.storage.database import Database
from consentry.storage.keystore import KeyStore, open_keystore
from consentry.storage.schema import migrate
from consentry.storage.writer import Writer

log = structlog.get_logger("consentry")


@dataclass
class Core:
    settings: Settings
    policy: Policy
    db: Database
    keys: KeyStore
    secrets: Secrets
    writer: Writer
    clock: Clock
    checkpointer: Checkpointer
    plugins: Plugins
    caches: dict[str, Any] = field(default_factory=dict)
    background: Background = field(default_factory=Background)  # work done after answering

    @property
    def signing_key(self) -> SigningKey:
        return self.checkpointer.key


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.sqlite_path}"


def load_plugins(settings: Settings) -> Plugins:
    enabled, disabled = settings.plugin_names()
    return Plugins.load(enabled, disabled, timeout=settings.plugin_timeout_seconds)


async def open_core(
    settings: Settings, *, clock: Clock = system_clock, plugins: Plugins | None = None
) -> Core:
    """Load and check the policy first: a broken policy stops the start with its message."""
    policy = load_policy(settings.policy_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secrets = load_or_create_secrets(settings)
    db = Database(database_url(settings))
    await db.start()
    plugins = plugins if plugins is not None else load_plugins(settings)
    await migrate(db, tuple(table for _, table in plugins.registry.tables))
    keys = open_keystore(settings.resolved_keystore_url, secrets.kek)
    await keys.open()
    writer = Writer(
        db, clock=clock, policy_version=lambda: policy.version, max_batch=settings.group_commit_max
    )
    await writer.start()
    checkpointer = Checkpointer(db, writer, SigningKey(secrets.signing_seed), clock)
    await checkpointer.start()
    return Core(settings, policy, db, keys, secrets, writer, clock, checkpointer, plugins)


async def close_core(core: Core) -> None:
    await core.background.drain()
    await core.checkpointer.stop()
    await core.writer.stop()
    await core.keys.close()
    await core.db.close()
