"""The running core: the policy, both stores, secrets, the writer and the plugins, held together.

`consentry.boot` opens and closes one; every area receives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from consentry.core.background import Background

if TYPE_CHECKING:
    from consentry.audit_log.tree import Checkpointer
    from consentry.clock import Clock
    from consentry.crypto.secrets import Secrets
    from consentry.crypto.signing import SigningKey
    from consentry.domain.purposes import Policy
    from consentry.host.manager import Plugins
    from consentry.plugins.web import RouteContext
    from consentry.settings import Settings
    from consentry.storage.database import Database
    from consentry.storage.keystore import KeyStore
    from consentry.storage.retention import IdempotencyPurger
    from consentry.storage.writer import Writer


def _no_contexts(plugin: str) -> RouteContext:
    raise RuntimeError("the plugin host is not attached: open the core with consentry.boot")


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
    purger: IdempotencyPurger
    caches: dict[str, Any] = field(default_factory=dict)
    background: Background = field(default_factory=Background)  # work done after answering
    # the context a plugin's hooks receive, bound to that plugin: the host attaches it at boot
    plugin_context: Callable[[str], RouteContext] = _no_contexts

    @property
    def signing_key(self) -> SigningKey:
        return self.checkpointer.key
