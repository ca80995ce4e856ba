"""Settings are built once, from the environment or by hand, and passed in: never read at import."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file in data_dir
    keystore_url: str = ""  # empty: beside the data store (own SQLite file / own PostgreSQL schema)
    policy_path: Path = DEFAULT_POLICY
    host: str = "127.0.0.1"
    port: int = 8000
    kek: str = ""  # base64 key-encryption key (32 bytes); empty: generated into data_dir/secrets
    index_key: str = ""  # base64 blind-index key; empty: generated into data_dir/secrets
    token_key: str = ""  # base64 token-signing key; empty: generated into data_dir/secrets
    signing_key: str = ""  # base64 Ed25519 seed (audit checkpoints, receipts); empty: generated
    log_level: str = "info"
    log_json: bool = True
    group_commit_max: int = 100
    rate_limit_per_minute: int = 6000
    customer_token_ttl_seconds: int = 900
    max_body_bytes: int = 1_048_576
    plugins: str = ""  # names of the plugins to load, comma-separated; empty: every installed one
    plugins_disabled: str = ""  # names never to load
    plugin_timeout_seconds: float = 5.0  # a plugin hook that takes longer is cut off
    export_link_ttl_seconds: int = 259_200  # a DSR export download link works this long (72 h)
    # where customers reach the service (https://consent.example.com): the only base of links
    # handed out; empty: no links (`consentry serve` on loopback uses its own address)
    public_url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_url", self.public_url.strip().rstrip("/"))

    def plugin_names(self) -> tuple[list[str], list[str]]:
        """(enabled, disabled) plugin names from the comma-separated settings."""
        return _names(self.plugins), _names(self.plugins_disabled)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "consentry.sqlite"

    @property
    def resolved_keystore_url(self) -> str:
        """The key store lives apart from the data store, so erasure reaches data-store backups."""
        if self.keystore_url:
            return self.keystore_url
        if self.is_postgres:
            return _keys_schema_url(self.database_url)
        return f"sqlite:///{self.sqlite_path.parent / 'keys.sqlite'}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        base = cls()
        values: dict[str, Any] = {}
        for name, kind in _ENV_FIELDS.items():
            raw = env.get("CONSENTRY_" + name.upper())
            if raw is not None:
                values[name] = kind(raw)
        return replace(base, **{**values, **overrides})


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _keys_schema_url(url: str) -> str:
    """Same PostgreSQL database, schema `<search_path>_keys` (or `consentry_keys`)."""
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p]
    schema = next((p.split("=", 1)[1] for p in params if p.startswith("search_path=")), "")
    rest = [p for p in params if not p.startswith("search_path=")]
    rest.append(f"search_path={schema + '_keys' if schema else 'consentry_keys'}")
    return base + "?" + "&".join(rest)


def _bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


_ENV_FIELDS: dict[str, Callable[[str], Any]] = {
    "data_dir": Path,
    "database_url": str,
    "keystore_url": str,
    "policy_path": Path,
    "host": str,
    "port": int,
    "kek": str,
    "index_key": str,
    "token_key": str,
    "signing_key": str,
    "log_level": str,
    "log_json": _bool,
    "group_commit_max": int,
    "rate_limit_per_minute": int,
    "customer_token_ttl_seconds": int,
    "max_body_bytes": int,
    "plugins": str,
    "plugins_disabled": str,
    "plugin_timeout_seconds": float,
    "public_url": str,
}
