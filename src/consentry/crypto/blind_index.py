"""Blind indexes: keyed hashes that let encrypted identities be found by equality only.

The index is HMAC-SHA256(index_key, kind NUL normalized_value). The kind is inside the MAC input
and ends at the first NUL (kinds may not contain one), so the encoding is unambiguous and an email
and a phone with the same text never share an index.
"""

from __future__ import annotations

import hashlib
import hmac
import re

MIN_PHONE_DIGITS = 7
MAX_PHONE_DIGITS = 15  # E.164


def normalize_identity(kind: str, value: str) -> str:
    """Canonical form of an identity value, so equal identities hash equally."""
    if kind == "email":
        return _normalize_email(value)
    if kind == "phone":
        return _normalize_phone(value)
    return value.strip()


def blind_index(key: bytes, kind: str, value: str) -> str:
    """The 64-hex-char blind index of an identity of the given kind."""
    if not kind or "\x00" in kind:
        raise ValueError("identity kind must be a non-empty name without NUL")
    message = kind.encode("utf-8") + b"\x00" + normalize_identity(kind, value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _normalize_email(value: str) -> str:
    normalized = value.strip().lower()
    if not normalized:
        raise ValueError("email is empty")
    if not _EMAIL.match(normalized):
        raise ValueError("email must look like name@domain.tld")
    return normalized


def _normalize_phone(value: str) -> str:
    stripped = value.strip()
    digits = "".join(ch for ch in stripped if ch.isascii() and ch.isdigit())
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        raise ValueError(f"phone number must have {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits")
    return ("+" if stripped.startswith("+") else "") + digits


def external_id_hash(key: bytes, external_id: str) -> str:
    """A keyed hash of the company's id for a customer: erasure tombstones keep only this."""
    message = b"external_id\x00" + external_id.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()
