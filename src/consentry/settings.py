"""Settings are built once, from the environment, a settings file or by hand, and passed in:
never read at import.

`Settings` is the one list. Each field's environment variable (`CONSENTRY_` + its name in upper
case), its converter (from the annotated type), its `_FILE` variant for secrets (Docker secrets),
its key in a settings file (its name) and its README row (`consentry settings`) are derived from
the field: adding a setting is adding a field,
`name: int = field(default=5, metadata=about("one line of help"))`.
Precedence: command-line flags, then the environment, then the settings file, then defaults.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from consentry.settings_types import converter_for

PACKAGED_POLICY = Path(__file__).parent / "policy" / "default" / "default.yaml"
DEFAULT_POLICY = PACKAGED_POLICY  # the repository's policies/ is the same file (a link)
PREFIX = "CONSENTRY_"
CONFIG_VARIABLE = "CONSENTRY_CONFIG"
# CONSENTRY_* names other components read for themselves: the email plugin's SMTP_*, the test
# suite's and benchmarks' own. (Each installed plugin also owns CONSENTRY_<PLUGIN NAME>_*.)
OTHER_NAMESPACES = ("SMTP", "TEST", "BENCH", "FUZZ", "CRASH")
_SECRET_WORDS = {"kek", "key", "secret", "password", "url"}


class SettingsError(ValueError):
    """A setting that cannot be used; the message names where it came from and what it takes."""


class NoData(Exception):
    """Where the settings point there is no Consentry data, and the command must not make any:
    a fresh database and fresh secrets would quietly stand in for the real ones."""


def about(help: str, *, shown: str = "", secret: bool = False) -> dict[str, Any]:
    """A field's metadata: a one-line help text, how the README shows the default (`shown`, for
    computed or empty defaults) and whether it may be read from a file (a secret; names with
    a last word key/kek/secret/password/url are secrets anyway)."""
    return {"help": help, "shown": shown, "secret": secret}


@dataclass(frozen=True, slots=True)
class PluginSources:
    """Not a setting: where the plugins' own settings are read from at start (consentry.host
    .settings): the environment (None: the process's) and the settings file's tables."""

    env: Mapping[str, str] | None = None
    tables: Mapping[str, Any] = field(default_factory=dict)  # `[<prefix>]` tables, by name
    file: Path | None = None


def default_policy_path() -> Path:
    """`./policies/default.yaml` where the process runs, if there is one; else the packaged one."""
    try:
        local = Path.cwd() / "policies" / "default.yaml"
    except OSError:  # the working folder was removed
        return PACKAGED_POLICY
    return local if local.is_file() else PACKAGED_POLICY


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(
        default=Path("data"), metadata=about("SQLite files and generated secrets")
    )
    database_url: str = field(
        default="",
        metadata=about(
            "`postgresql://user@host/db[?search_path=schema]`", shown="SQLite in the data dir"
        ),
    )
    keystore_url: str = field(
        default="",
        metadata=about("`sqlite:///path` or `postgresql://...`", shown="beside the data store"),
    )
    policy_path: Path = field(
        default_factory=default_policy_path,
        metadata=about(
            "the policy", shown="`./policies/default.yaml` if present, else the packaged default"
        ),
    )
    host: str = field(default="127.0.0.1", metadata=about("address to listen on"))
    port: int = field(default=8000, metadata=about("port to listen on"))
    kek: str = field(
        default="",
        metadata=about("base64 key-encryption key (32 bytes)", shown="generated", secret=True),
    )
    index_key: str = field(
        default="", metadata=about("base64 blind-index key (32 bytes)", shown="generated")
    )
    token_key: str = field(
        default="", metadata=about("base64 token-signing key (32 bytes)", shown="generated")
    )
    signing_key: str = field(
        default="",
        metadata=about("base64 Ed25519 seed for checkpoints and receipts", shown="generated"),
    )
    log_level: str = field(default="info", metadata=about("`debug`, `info`, `warning` or `error`"))
    log_json: bool = field(default=True, metadata=about("JSON log lines (`false`: readable ones)"))
    group_commit_max: int = field(
        default=100, metadata=about("most writes committed in one transaction")
    )
    # Request limits per minute, per process (0: that limit off). A backend key's limit is above
    # what one process can serve (~20,000 requests/s for a bare ASGI app on uvicorn), so only a
    # runaway client meets it; customers and callers without a credential are held far tighter.
    rate_limits: bool = field(
        default=True, metadata=about("request limits on (`false`: none at all; tests, benchmarks)")
    )
    rate_limit_key_per_minute: int = field(
        default=1_200_000, metadata=about("requests per API key a minute (`0`: no limit)")
    )
    rate_limit_customer_per_minute: int = field(
        default=600, metadata=about("requests per customer a minute, across their tokens")
    )
    rate_limit_anonymous_per_minute: int = field(
        default=300, metadata=about("requests without a credential per client address a minute")
    )
    rate_limit_auth_failures_per_minute: int = field(
        default=30, metadata=about("failed authentications per client address a minute")
    )
    trusted_proxies: str = field(
        default="",
        metadata=about(
            "proxies whose X-Forwarded-For/-Proto are believed (IPs or CIDRs, comma-separated)",
            shown="none: the client is the TCP peer",
        ),
    )
    customer_token_ttl_seconds: int = field(default=900, metadata=about("customer token lifetime"))
    max_body_bytes: int = field(default=1_048_576, metadata=about("larger request bodies get 413"))
    plugins: str = field(
        default="", metadata=about("plugins to load, comma-separated", shown="all installed")
    )
    plugins_disabled: str = field(
        default="", metadata=about("plugins never to load, comma-separated", shown="none")
    )
    plugin_timeout_seconds: float = field(
        default=5.0, metadata=about("a plugin hook that takes longer is cut off")
    )
    export_link_ttl_seconds: int = field(
        default=259_200, metadata=about("a DSR export and its download link last this long (72 h)")
    )
    idempotency_retention_hours: int = field(
        default=24,
        metadata=about(
            "an answer stored for an Idempotency-Key replays this long; then it is purged and the"
            " key is new again"
        ),
    )
    # emailed verification codes: how many each address and each client may ask for per hour,
    # and how many wrong codes an address and a client may try per day before 429s (a lockout)
    verification_codes_per_address_per_hour: int = field(
        default=3, metadata=about("emailed codes one address may ask for in an hour")
    )
    verification_codes_per_client_per_hour: int = field(
        default=10, metadata=about("emailed codes one client address may ask for in an hour")
    )
    verification_failures_per_address_per_day: int = field(
        default=10, metadata=about("wrong codes for one address in a day before a lockout (429)")
    )
    verification_failures_per_client_per_day: int = field(
        default=50, metadata=about("wrong codes from one client address in a day before a lockout")
    )
    verification_send_jitter_seconds: float = field(
        default=2.0,
        metadata=about("a code's email leaves at a random moment up to this long after the answer"),
    )
    public_url: str = field(
        default="",
        metadata=about(
            "where customers reach the service, e.g. `https://consent.example.com`: the only base"
            " of the links it hands out (never the request's `Host`); without it, asking for a"
            " download link answers 503",
            shown="none (`consentry serve` on loopback: its own address)",
        ),
    )

    plugin_sources: PluginSources = field(
        default_factory=PluginSources, compare=False, repr=False, metadata={"internal": True}
    )

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
    def load(
        cls, env: Mapping[str, str] | None = None, config: Path | None = None, **flags: object
    ) -> Settings:
        """Defaults, then the settings file (`config`, or CONSENTRY_CONFIG), then the
        environment, then `flags` (None values are flags not given)."""
        env = os.environ if env is None else env
        config = config or (Path(env[CONFIG_VARIABLE]) if env.get(CONFIG_VARIABLE) else None)
        tables: dict[str, Any] = {}
        values = _from_file(config, tables) if config else {}
        values |= _from_env(env)
        values |= {name: value for name, value in flags.items() if value is not None}
        return cls(**values, plugin_sources=PluginSources(env, tables, config))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags: object) -> Settings:
        return cls.load(env, None, **flags)


# -- the derived list ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting as the outside world sees it."""

    name: str
    kind: Any  # the annotated type
    help: str
    shown: str
    default: Any
    secret: bool

    @property
    def variable(self) -> str:
        return PREFIX + self.name.upper()

    def convert(self, raw: object, where: str) -> Any:
        converter = converter_for(self.kind)
        if converter is None:
            raise TypeError(f"Settings.{self.name}: no converter for {self.kind!r}")
        try:
            return converter(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{where}: {raw!r} is not {exc}") from None


@cache
def specs() -> tuple[Spec, ...]:
    hints = typing.get_type_hints(Settings)
    found = []
    for f in fields(Settings):
        if f.metadata.get("internal"):
            continue
        default = f.default if f.default_factory is MISSING else f.default_factory()
        secret = bool(f.metadata.get("secret")) or f.name.split("_")[-1] in _SECRET_WORDS
        found.append(
            Spec(f.name, hints[f.name], f.metadata.get("help", ""), f.metadata.get("shown", ""),
                 default, secret)
        )  # fmt: skip
    return tuple(found)


def known_names() -> dict[str, Spec]:
    """Every accepted key (lower case): each setting, and `<name>_file` for each secret."""
    names = {s.name: s for s in specs()}
    names |= {s.name + "_file": s for s in specs() if s.secret}
    return names


def unknown_names(env: Mapping[str, str], *, namespaces: Iterable[str] = ()) -> list[str]:
    """One warning per CONSENTRY_* variable that nothing reads, with a "did you mean"."""
    known = {PREFIX + name.upper() for name in known_names()} | {CONFIG_VARIABLE}
    others = tuple(PREFIX + n.upper() + "_" for n in (*OTHER_NAMESPACES, *namespaces))
    warnings = []
    for variable in sorted(env):
        if not variable.startswith(PREFIX) or variable in known or variable.startswith(others):
            continue
        close = difflib.get_close_matches(variable, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"{variable} is not a setting{hint}; it is ignored")
    return warnings


def settings_table() -> str:
    """The README's table of settings, in Markdown."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in specs():
        default = s.shown or f"`{_show(s.default)}`"
        also = f" (or `{s.variable}_FILE`: a file holding it)" if s.secret else ""
        rows.append(f"| `{s.variable}` | {default} | {s.help}{also} |")
    return "\n".join(rows) + "\n"


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- reading ---------------------------------------------------------------------------------------


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for s in specs():
        raw = env.get(s.variable)
        path = env.get(s.variable + "_FILE") if s.secret else None
        if raw is not None and path is not None:
            raise SettingsError(f"set {s.variable} or {s.variable}_FILE, not both")
        if path is not None:
            raw = _read_secret(Path(path), f"{s.variable}_FILE")
        if raw is not None:
            values[s.name] = s.convert(raw, s.variable)
    return values


def _from_file(path: Path, tables: dict[str, Any]) -> dict[str, Any]:
    """The core's settings in the file; its tables (plugins' settings) go to `tables`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    known = known_names()
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if isinstance(raw, dict):  # no core setting is a table: a plugin's `[<prefix>]`
            tables[key] = raw
            continue
        s = known.get(key)
        if s is None:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(
                f"{path}: unknown key {key!r}{hint}; allowed keys: {', '.join(sorted(known))}"
            )
        if key.endswith("_file") and key != s.name:
            raw = _read_secret(Path(str(raw)), f"{path}: {key}")
        values[s.name] = s.convert(raw, f"{path}: {s.name}")
    return values


def _read_secret(path: Path, where: str) -> str:
    """A secret file's text without its trailing newline (what `echo` and editors add)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read {path}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")


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
