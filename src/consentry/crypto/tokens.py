"""Signed customer tokens, single-use secrets and API keys.

Customer token: base64url(compact JSON claims with iat, exp) "." base64url(HMAC-SHA256 of the first
part), no padding. Single-use secrets and API-key secrets are 32 random bytes; only their SHA-256
digest is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime

SECRET_BYTES = 32
MAX_TOKEN_CHARS = 8192
API_KEY_PREFIX = "ck_"
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


class TokenError(Exception):
    """A token was refused; `reason` is a short fixed phrase safe to log or return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign_token(key: bytes, claims: dict[str, object], *, now: datetime, ttl_seconds: int) -> str:
    """A compact HMAC-signed token carrying `claims` plus `iat` and `exp` (Unix seconds)."""
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = _unix(now)
    body = {**claims, "iat": issued, "exp": issued + ttl_seconds}
    payload = _b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_b64encode(_mac(key, payload))}"


def verify_token(key: bytes, token: str, *, now: datetime) -> dict[str, object]:
    """The claims of a valid, unexpired token; otherwise raise TokenError."""
    payload, signature = _split(token)
    if not hmac.compare_digest(_mac(key, payload), signature):
        raise TokenError("bad signature")
    claims = _claims(payload)
    if _unix(now) >= _int_claim(claims, "exp"):
        raise TokenError("expired")
    return claims


def new_secret() -> tuple[str, str]:
    """A fresh single-use secret to hand out, and the digest to store in its place."""
    token = secrets.token_urlsafe(SECRET_BYTES)
    return token, hash_secret(token)


def hash_secret(token: str) -> str:
    """SHA-256 hex digest of a single-use secret (see `hash_api_key_secret` for why not a KDF)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """(key_id, full key `ck_<key_id>_<secret>` shown once, hash of the secret to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secret}", hash_api_key_secret(secret)


def parse_api_key(full: str) -> tuple[str, str] | None:
    """(key_id, secret) from a full API key string, or None if it is not one."""
    if not full.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = full.removeprefix(API_KEY_PREFIX).partition("_")
    if not sep or not _KEY_ID_RE.fullmatch(key_id) or not _SECRET_RE.fullmatch(secret):
        return None
    return key_id, secret


def hash_api_key_secret(secret: str) -> str:
    """SHA-256 hex digest of an API-key secret.

    A slow password KDF (argon2, scrypt) exists to make guessing low-entropy human passwords
    expensive. These secrets are 32 bytes from the OS CSPRNG (256 bits of entropy), so brute force
    against a leaked digest is infeasible already, and a fast hash keeps every request cheap.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _split(token: str) -> tuple[str, bytes]:
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenError("malformed")
    payload, encoded_sig = token.split(".")
    if not payload or not encoded_sig or not _B64URL_RE.fullmatch(payload):
        raise TokenError("malformed")
    return payload, _b64decode(encoded_sig)


def _claims(payload: str) -> dict[str, object]:
    try:
        claims = json.loads(_b64decode(payload))
    except ValueError:
        raise TokenError("malformed") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed")
    return claims


def _int_claim(claims: dict[str, object], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError("malformed")
    return value


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return int(moment.timestamp())


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url: only the canonical encoding is accepted (no malleability)."""
    if not _B64URL_RE.fullmatch(text):
        raise TokenError("malformed")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed") from None
    if _b64encode(raw) != text:
        raise TokenError("malformed")
    return raw
