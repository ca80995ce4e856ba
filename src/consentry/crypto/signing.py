"""Ed25519 signatures for checkpoints and receipts, and the public keys that verify them offline.

The private key is a 32-byte seed kept with the other service secrets; it never leaves this
module in any form but a signature. Public keys are published as a JWK Set (RFC 8037, `OKP` /
`Ed25519`), each with a `kid` derived from the key itself, so a verifier picks the right key
after a rotation. Receipts are compact JWS (RFC 7515) with `alg: EdDSA`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consentry.crypto.canonical import canonical_json


class SignatureError(ValueError):
    """A signature, key or token that does not verify; the message says which part failed."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureError("not valid base64url") from None


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: str
    raw: bytes  # the 32-byte Ed25519 public key

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        if len(raw) != 32:
            raise SignatureError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls(hashlib.sha256(raw).hexdigest()[:16], raw)

    @classmethod
    def from_pem(cls, pem: bytes) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            raise SignatureError("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError("the PEM key is not an Ed25519 key")
        return cls.from_raw(key.public_bytes_raw())

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> PublicKey:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
            raise SignatureError("the JWK is not an Ed25519 (OKP) public key")
        key = cls.from_raw(b64url_decode(str(jwk["x"])))
        if "kid" in jwk and jwk["kid"] != key.key_id:
            raise SignatureError(f"the JWK's kid {jwk['kid']} does not match its key")
        return key

    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url(self.raw),
            "kid": self.key_id,
            "alg": "EdDSA",
            "use": "sig",
        }

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class SigningKey:
    """The service's current signing key. `repr` and `str` never show the seed."""

    __slots__ = ("_private", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = PublicKey.from_raw(self._private.public_key().public_bytes_raw())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


class KeyRing:
    """Public keys by id: the current one and every retired one, so old signatures verify."""

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys = {k.key_id: k for k in keys}

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key_id: str) -> PublicKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise SignatureError(f"no public key with id {key_id!r} is known") from None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [k.jwk() for k in self._keys.values()]}

    @classmethod
    def load(cls, data: bytes) -> KeyRing:
        """A JWK Set (as published at /.well-known/jwks.json), one JWK, or PEM public keys."""
        text = data.strip()
        if text.startswith(b"-----BEGIN"):
            blocks = text.split(b"-----END PUBLIC KEY-----")
            pems = [b + b"-----END PUBLIC KEY-----\n" for b in blocks if b.strip()]
            return cls(PublicKey.from_pem(p) for p in pems)
        try:
            doc = json.loads(text)
        except ValueError:
            raise SignatureError("the key file is neither PEM nor JSON (JWK or JWK Set)") from None
        if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
            return cls(PublicKey.from_jwk(k) for k in doc["keys"])
        if isinstance(doc, dict):
            return cls([PublicKey.from_jwk(doc)])
        raise SignatureError("the key file is neither PEM nor JSON (JWK or JWK Set)")


# -- compact JWS (RFC 7515) with EdDSA -----------------------------------------------------------


def jws_sign(claims: Mapping[str, Any], key: SigningKey, *, typ: str = "JWT") -> str:
    header = {"alg": "EdDSA", "kid": key.key_id, "typ": typ}
    signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(dict(claims)))}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def jws_verify(token: str, keys: KeyRing) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, claims) of a valid token; `SignatureError` saying what is wrong otherwise."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise SignatureError("a compact JWS has three dot-separated parts")
    header = _json_part(parts[0], "header")
    if header.get("alg") != "EdDSA":
        raise SignatureError(f"unsupported alg {header.get('alg')!r}: only EdDSA is accepted")
    if "crit" in header:
        raise SignatureError("critical header parameters are not supported")
    key = keys.get(str(header.get("kid", "")))
    if not key.verify(b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii")):
        raise SignatureError(f"the signature does not verify with key {key.key_id}")
    return header, _json_part(parts[1], "payload")


def _json_part(part: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part))
    except (ValueError, UnicodeDecodeError):
        raise SignatureError(f"the JWS {name} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise SignatureError(f"the JWS {name} is not a JSON object")
    return value
