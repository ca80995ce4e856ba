"""`consentry receipt verify FILE --public-key KEYS`: check a consent receipt offline.

FILE holds the compact JWS, or the JSON the API answers (`{"receipt_id", "jws", "claims"}`).
KEYS is a JWK Set (as served at /.well-known/jwks.json), a single JWK, or PEM public keys.
Exit codes: 0 valid, 1 not valid (tampered, unknown key, malformed), 2 a file cannot be used.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from consentry.crypto.signing import KeyRing, SignatureError, b64url_decode, jws_verify

VALID, INVALID, UNUSABLE = 0, 1, 2


@click.group(help="verify a signed consent receipt offline")
def receipt() -> None:
    pass


@receipt.command(short_help="check a receipt (JWS) with the public key only")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(path_type=Path),
    required=True,
    help="JWK Set, JWK or PEM public key(s)",
)
def verify(file: Path, public_key: Path) -> int:
    """Check a consent receipt (JWS) offline, with the public key only.

    FILE holds the compact JWS, or the JSON the API answers. Exit codes: 0 valid; 1 not valid
    (tampered, unknown key, malformed); 2 a file cannot be used."""
    code, message = verify_receipt(file, public_key)
    print(message, file=sys.stdout if code == VALID else sys.stderr)
    return code


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Unusable(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


class _Unusable(Exception):
    pass


def _token(data: bytes, path: Path) -> str:
    """The compact JWS in a receipt file: the bare token, or the `jws` of the API's answer."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Unusable(f"{path} is not text: expected a compact JWS or the API's JSON") from None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise _Unusable(f"{path} starts like JSON but is not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("jws"), str):
            raise _Unusable(f"{path} is JSON without a 'jws' string")
        return str(doc["jws"])
    return text


def _kid(token: str) -> str:
    """The key id the token names, for error messages; '' when the header is unreadable."""
    try:
        header = json.loads(b64url_decode(token.split(".")[0]))
    except (SignatureError, ValueError, UnicodeDecodeError):
        return ""
    return str(header.get("kid", "")) if isinstance(header, dict) else ""


def _why(exc: SignatureError, token: str, keys: KeyRing, keys_path: Path) -> str:
    text = str(exc)
    if text.startswith("no public key with id"):
        known = ", ".join(k["kid"] for k in keys.jwks()["keys"]) or "none"
        return (
            f"INVALID: the receipt is signed with key id {_kid(token)!r}, which is not in"
            f" {keys_path} (it holds: {known}); get the service's current JWK Set"
        )
    if text.startswith("the signature does not verify"):
        return (
            f"INVALID: bad signature: {text}; the receipt was altered after signing"
            " (payload or signature changed)"
        )
    return f"INVALID: malformed receipt: {text}"


def describe(header: dict[str, Any], claims: dict[str, Any]) -> str:
    when = claims.get("consentTimestamp")
    at = (
        datetime.fromtimestamp(when, UTC).isoformat()
        if isinstance(when, int | float)
        else "(no consentTimestamp)"
    )
    lines = [
        f"VALID: consent receipt {claims.get('consentReceiptID', '(no consentReceiptID)')}",
        f"  signed with key {header.get('kid')} ({header.get('alg')})",
        f"  version {claims.get('version')}, jurisdiction {claims.get('jurisdiction')}",
        f"  consent time {at}, collected via {claims.get('collectionMethod')}",
        f"  customer (pseudonymous) {claims.get('piiPrincipalId')}",
        "  purposes:",
    ]
    for service in claims.get("services") or []:
        for p in (service.get("purposes") or []) if isinstance(service, dict) else []:
            if isinstance(p, dict):
                name = ",".join(p.get("purposeCategory") or []) or p.get("purpose")
                channel = f" on {p['channel']}" if p.get("channel") else ""
                lines.append(
                    f"    {name}{channel}: {p.get('decision')}"
                    f" ({p.get('consentType')}, notice {p.get('noticeVersion')})"
                )
    return "\n".join(lines)


def verify_receipt(jws_path: Path, keys_path: Path) -> tuple[int, str]:
    """(exit code, message): 0 and what the receipt says, or non-zero and why not."""
    try:
        keys = KeyRing.load(_read(keys_path, "public key file"))
        token = _token(_read(jws_path, "receipt file"), jws_path)
    except _Unusable as exc:
        return UNUSABLE, f"ERROR: {exc}"
    except SignatureError as exc:
        return UNUSABLE, f"ERROR: the public key file {keys_path} is not usable: {exc}"
    if not len(keys):
        return UNUSABLE, f"ERROR: the public key file {keys_path} holds no key"
    try:
        header, claims = jws_verify(token, keys)
    except SignatureError as exc:
        return INVALID, _why(exc, token, keys, keys_path)
    if claims.get("version") != "KI-CR-v1.1.0" or "consentReceiptID" not in claims:
        return INVALID, (
            "INVALID: the signature is good but this is not a consent receipt"
            f" (version {claims.get('version')!r})"
        )
    return VALID, describe(header, claims)
