"""The four service secrets: from configuration, or generated once into `data_dir/secrets`.

Each secret is 32 random bytes. A base64 value in the settings wins; otherwise the secret is read
from `data_dir/secrets/<name>.key`, and created there (directory 0700, file 0600, atomically) the
first time. An existing file is never overwritten: losing the KEK would shred every subject.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

KEY_BYTES = 32
NAMES = ("kek", "index_key", "token_key", "signing_key")  # each a setting and a file name


class SecretSettings(Protocol):
    """Where the secrets come from: `consentry.settings.Settings` (crypto imports nothing above
    the pure libraries). Each of NAMES is a base64 value, or blank for the file."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def kek(self) -> str: ...
    @property
    def index_key(self) -> str: ...
    @property
    def token_key(self) -> str: ...
    @property
    def signing_key(self) -> str: ...


@dataclass(frozen=True, slots=True, repr=False)
class Secrets:
    kek: bytes
    index_key: bytes
    token_key: bytes
    signing_seed: bytes  # Ed25519: audit checkpoints and consent receipts

    def __repr__(self) -> str:  # never print key material
        return "Secrets(<redacted>)"


def load_or_create_secrets(settings: SecretSettings) -> Secrets:
    """Resolve the KEK, blind-index key and token key from settings or the secrets directory."""
    folder = settings.data_dir / "secrets"
    return Secrets(
        kek=_resolve("kek", settings.kek, folder),
        index_key=_resolve("index_key", settings.index_key, folder),
        token_key=_resolve("token_key", settings.token_key, folder),
        signing_seed=_resolve("signing_key", settings.signing_key, folder),
    )


def missing_secret_files(settings: SecretSettings) -> list[Path]:
    """The key files a start would have to generate: for a folder that already holds data,
    generating them would lock that data away, so commands other than `serve` refuse."""
    folder = settings.data_dir / "secrets"
    return [
        folder / f"{name}.key"
        for name in NAMES
        if not str(getattr(settings, name)).strip() and not (folder / f"{name}.key").is_file()
    ]


def kek_id(kek: bytes) -> str:
    """A short, non-secret fingerprint of a KEK, stored beside wrapped keys for rotation."""
    return hashlib.sha256(kek).hexdigest()[:8]


def _resolve(name: str, configured: str, folder: Path) -> bytes:
    if configured.strip():
        return _decode(configured, f"CONSENTRY_{name.upper()}")
    return _load_or_create_file(folder / f"{name}.key")


def _decode(value: str, env_var: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{env_var} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(
            f"{env_var} must decode to {KEY_BYTES} bytes, got {len(raw)} "
            f"(generate one with: openssl rand -base64 {KEY_BYTES})"
        )
    return raw


def _load_or_create_file(path: Path) -> bytes:
    if not path.exists():
        _create_file(path)
    os.chmod(path, 0o600)  # one an older version left readable is tightened
    return _decode(path.read_text(encoding="ascii"), f"key file {path}")


def _create_file(path: Path) -> None:
    """Write a new key to a private temp file, then hard-link it into place (no overwrite)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    encoded = base64.b64encode(_random.token_bytes(KEY_BYTES)) + b"\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        _link_if_absent(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def replace_secret_file(settings: SecretSettings, name: str) -> bytes:
    """A new random secret in place of `data_dir/secrets/<name>.key` (key rotation). The old
    one is gone for good: only secrets that must never be used again are rotated this way."""
    path = settings.data_dir / "secrets" / f"{name}.key"
    raw = _random.token_bytes(KEY_BYTES)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(raw) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return raw


def _link_if_absent(tmp: Path, path: Path) -> None:
    """`os.link` fails if the target exists, so a concurrent creator's key is kept, not replaced."""
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
