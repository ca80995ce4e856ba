"""Envelope encryption: per-subject data keys (DEKs) under one key-encryption key (KEK).

Both layers are AES-256-GCM with a fresh random 96-bit nonce per message.

Wrapped DEK blob:  version (1 byte) | KEK id (8 ASCII hex) | nonce (12) | ciphertext + tag (48)
    AAD = domain label | version | KEK id | subject id   (a DEK cannot be moved to another subject)
Data blob:         version (1 byte) | nonce (12) | ciphertext + tag
    AAD = version | caller's aad                        (e.g. "subject:<id>:attr:email")

Every failure raises `DecryptionError` with a fixed message: never plaintext, key or blob bytes.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consentry.crypto.secrets import kek_id

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEK_ID_BYTES = 8
WRAP_VERSION = 1
DATA_VERSION = 1
_WRAP_LABEL = b"consentry/dek\x00"
_WRAP_HEADER = 1 + KEK_ID_BYTES


class DecryptionError(Exception):
    """Raised for any failure to decrypt or unwrap; the message never carries secret material."""


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def wrap_key(kek: bytes, dek: bytes, *, subject_id: str) -> bytes:
    """Encrypt `dek` under `kek`, bound to `subject_id`, tagged with the KEK's fingerprint."""
    if len(dek) != KEY_BYTES:
        raise ValueError(f"data key must be {KEY_BYTES} bytes")
    header = bytes([WRAP_VERSION]) + kek_id(_checked(kek)).encode("ascii")
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, dek, _wrap_aad(header, subject_id))
    return header + nonce + sealed


def unwrap_key(kek: bytes, wrapped: bytes, *, subject_id: str) -> bytes:
    """Recover a DEK made by `wrap_key`; raise DecryptionError on any mismatch or tampering."""
    if len(wrapped) != _WRAP_HEADER + NONCE_BYTES + KEY_BYTES + TAG_BYTES:
        raise DecryptionError("wrapped key has the wrong length")
    if wrapped[0] != WRAP_VERSION:
        raise DecryptionError("wrapped key has an unknown format version")
    header = wrapped[:_WRAP_HEADER]
    if header[1:] != kek_id(_decrypt_key(kek)).encode("ascii"):
        raise DecryptionError("wrapped key was made with a different KEK")
    nonce = wrapped[_WRAP_HEADER : _WRAP_HEADER + NONCE_BYTES]
    sealed = wrapped[_WRAP_HEADER + NONCE_BYTES :]
    return _open(kek, nonce, sealed, _wrap_aad(header, subject_id), "wrapped key")


def wrapped_kek_id(wrapped: bytes) -> str:
    """The fingerprint of the KEK that wrapped this blob (for rotation); no decryption needed."""
    if len(wrapped) < _WRAP_HEADER or wrapped[0] != WRAP_VERSION:
        raise DecryptionError("wrapped key has an unknown format")
    return wrapped[1:_WRAP_HEADER].decode("ascii", errors="replace")


def encrypt(dek: bytes, plaintext: bytes, *, aad: str) -> bytes:
    """Seal `plaintext` under `dek`; `aad` names where the value belongs and must match on read."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(_checked(dek)).encrypt(nonce, plaintext, _data_aad(aad))
    return bytes([DATA_VERSION]) + nonce + sealed


def decrypt(dek: bytes, blob: bytes, *, aad: str) -> bytes:
    """Open a blob made by `encrypt`; raise DecryptionError on any mismatch or tampering."""
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("ciphertext is too short")
    if blob[0] != DATA_VERSION:
        raise DecryptionError("ciphertext has an unknown format version")
    nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    return _open(_decrypt_key(dek), nonce, sealed, _data_aad(aad), "ciphertext")


def is_sealed(blob: bytes) -> bool:
    """A blob made by `encrypt` (JSON text never starts with the version byte)."""
    return blob[:1] == bytes([DATA_VERSION])


def encrypt_json(dek: bytes, value: object, *, aad: str) -> bytes:
    """Seal a JSON-serialisable value as compact UTF-8 JSON."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return encrypt(dek, text.encode("utf-8"), aad=aad)


def decrypt_json(dek: bytes, blob: bytes, *, aad: str) -> Any:
    """Open a blob made by `encrypt_json` and parse it."""
    raw = decrypt(dek, blob, aad=aad)
    try:
        return json.loads(raw)
    except ValueError:
        raise DecryptionError("decrypted payload is not valid JSON") from None


def _checked(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError(f"AES-256 key must be {KEY_BYTES} bytes")
    return key


def _decrypt_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise DecryptionError(f"AES-256 key must be {KEY_BYTES} bytes")
    return key


def _open(key: bytes, nonce: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise DecryptionError(
            f"{what} failed authentication (wrong key, context or data)"
        ) from None


def _wrap_aad(header: bytes, subject_id: str) -> bytes:
    return _WRAP_LABEL + header + subject_id.encode("utf-8")


def _data_aad(aad: str) -> bytes:
    return bytes([DATA_VERSION]) + aad.encode("utf-8")
