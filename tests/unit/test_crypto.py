"""Envelope encryption, blind indexes and tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.crypto.blind_index import blind_index, normalize_identity
from consentry.crypto.envelope import (
    DecryptionError,
    decrypt,
    decrypt_json,
    encrypt,
    encrypt_json,
    new_data_key,
    unwrap_key,
    wrap_key,
    wrapped_kek_id,
)
from consentry.crypto.secrets import kek_id
from consentry.crypto.tokens import (
    TokenError,
    hash_api_key_secret,
    hash_secret,
    new_api_key,
    new_secret,
    parse_api_key,
    sign_token,
    verify_token,
)

KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))
SECRET_TEXT = b"alice@example.com"
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _flip(blob: bytes, index: int, bit: int = 0) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 1 << bit
    return bytes(changed)


def _error(call: object) -> DecryptionError:
    assert callable(call)
    with pytest.raises(DecryptionError) as caught:
        call()
    return caught.value


# --- envelope -------------------------------------------------------------------------------


def test_data_key_is_random_and_32_bytes() -> None:
    """New data keys are 32 bytes and never repeat."""
    keys = {new_data_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 32 for k in keys)


def test_wrap_unwrap_round_trip() -> None:
    """A wrapped key unwraps to the same key under the same KEK and subject."""
    dek = new_data_key()
    wrapped = wrap_key(KEK, dek, subject_id="s1")
    assert unwrap_key(KEK, wrapped, subject_id="s1") == dek
    assert dek not in wrapped


def test_wrapped_key_is_tagged_with_kek_id() -> None:
    """The wrapped blob starts with a version byte and names the KEK that made it."""
    wrapped = wrap_key(KEK, new_data_key(), subject_id="s1")
    assert wrapped[0] == 1
    assert wrapped_kek_id(wrapped) == kek_id(KEK)
    assert len(kek_id(KEK)) == 8
    assert kek_id(KEK) != kek_id(OTHER_KEK)


def test_unwrap_with_wrong_subject_fails() -> None:
    """A wrapped key cannot be moved to another subject."""
    wrapped = wrap_key(KEK, new_data_key(), subject_id="s1")
    _error(lambda: unwrap_key(KEK, wrapped, subject_id="s2"))


def test_unwrap_with_wrong_kek_fails() -> None:
    """A different KEK cannot unwrap the key."""
    wrapped = wrap_key(KEK, new_data_key(), subject_id="s1")
    _error(lambda: unwrap_key(OTHER_KEK, wrapped, subject_id="s1"))


def test_every_byte_of_wrapped_key_is_protected() -> None:
    """Changing any byte of a wrapped key makes unwrapping fail."""
    wrapped = wrap_key(KEK, new_data_key(), subject_id="s1")
    for index in range(len(wrapped)):
        _error(lambda i=index: unwrap_key(KEK, _flip(wrapped, i), subject_id="s1"))


def test_truncated_or_extended_wrapped_key_fails() -> None:
    """A wrapped key of the wrong length is refused."""
    wrapped = wrap_key(KEK, new_data_key(), subject_id="s1")
    _error(lambda: unwrap_key(KEK, wrapped[:-1], subject_id="s1"))
    _error(lambda: unwrap_key(KEK, wrapped + b"\x00", subject_id="s1"))


def test_encrypt_decrypt_round_trip() -> None:
    """Ciphertext decrypts to the plaintext with the same key and aad."""
    dek = new_data_key()
    blob = encrypt(dek, SECRET_TEXT, aad="subject:1:email")
    assert SECRET_TEXT not in blob
    assert decrypt(dek, blob, aad="subject:1:email") == SECRET_TEXT


def test_encryption_is_randomised() -> None:
    """Encrypting the same value twice gives different ciphertexts."""
    dek = new_data_key()
    assert encrypt(dek, SECRET_TEXT, aad="a") != encrypt(dek, SECRET_TEXT, aad="a")


def test_every_byte_of_ciphertext_is_protected() -> None:
    """Changing any byte of a ciphertext makes decryption fail."""
    dek = new_data_key()
    blob = encrypt(dek, SECRET_TEXT, aad="a")
    for index in range(len(blob)):
        _error(lambda i=index: decrypt(dek, _flip(blob, i), aad="a"))


def test_wrong_aad_fails() -> None:
    """A ciphertext cannot be moved to another field or subject."""
    dek = new_data_key()
    blob = encrypt(dek, SECRET_TEXT, aad="subject:1:email")
    _error(lambda: decrypt(dek, blob, aad="subject:2:email"))


def test_wrong_key_fails() -> None:
    """Another data key cannot decrypt the ciphertext."""
    blob = encrypt(new_data_key(), SECRET_TEXT, aad="a")
    _error(lambda: decrypt(new_data_key(), blob, aad="a"))


def test_short_or_unknown_version_blob_fails() -> None:
    """Blobs that are too short or carry an unknown version are refused."""
    dek = new_data_key()
    blob = encrypt(dek, SECRET_TEXT, aad="a")
    _error(lambda: decrypt(dek, blob[:5], aad="a"))
    _error(lambda: decrypt(dek, b"\x09" + blob[1:], aad="a"))
    _error(lambda: decrypt(dek[:16], blob, aad="a"))


def test_error_messages_hold_no_secrets() -> None:
    """No decryption error message contains plaintext, key or blob material."""
    dek = new_data_key()
    blob = encrypt(dek, SECRET_TEXT, aad="subject:1:email")
    wrapped = wrap_key(KEK, dek, subject_id="s1")
    errors = [
        _error(lambda: decrypt(dek, blob, aad="x")),
        _error(lambda: decrypt(new_data_key(), blob, aad="subject:1:email")),
        _error(lambda: decrypt(dek, _flip(blob, 20), aad="subject:1:email")),
        _error(lambda: unwrap_key(KEK, wrapped, subject_id="s2")),
        _error(lambda: unwrap_key(OTHER_KEK, wrapped, subject_id="s1")),
    ]
    forbidden = [SECRET_TEXT.decode(), "alice", dek.hex(), KEK.hex(), blob.hex()[:16]]
    forbidden += [base64.b64encode(dek).decode(), repr(dek)[2:20], repr(blob)[2:20]]
    for error in errors:
        text = str(error) + repr(error)
        assert error.__cause__ is None
        assert not any(secret in text for secret in forbidden)


def test_json_round_trip_is_compact() -> None:
    """JSON values round-trip, encoded compactly."""
    dek = new_data_key()
    value = {"email": "a@b.c", "tags": [1, 2], "ok": True, "name": "Zoë"}
    blob = encrypt_json(dek, value, aad="a")
    assert decrypt_json(dek, blob, aad="a") == value
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert decrypt(dek, blob, aad="a") == compact


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=2048), aad=st.text(max_size=64))
def test_property_round_trip(plaintext: bytes, aad: str) -> None:
    """Any plaintext with any aad decrypts to itself."""
    dek = new_data_key()
    assert decrypt(dek, encrypt(dek, plaintext, aad=aad), aad=aad) == plaintext


@settings(max_examples=300, deadline=None)
@given(plaintext=st.binary(max_size=256), data=st.data())
def test_property_any_bit_flip_is_detected(plaintext: bytes, data: st.DataObject) -> None:
    """Flipping any single bit of a ciphertext is detected."""
    dek = new_data_key()
    blob = encrypt(dek, plaintext, aad="a")
    index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    _error(lambda: decrypt(dek, _flip(blob, index, bit), aad="a"))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_property_any_bit_flip_in_wrapped_key_is_detected(data: st.DataObject) -> None:
    """Flipping any single bit of a wrapped key is detected."""
    wrapped = wrap_key(KEK, os.urandom(32), subject_id="s")
    index = data.draw(st.integers(min_value=0, max_value=len(wrapped) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    _error(lambda: unwrap_key(KEK, _flip(wrapped, index, bit), subject_id="s"))


# --- blind index ----------------------------------------------------------------------------


def test_blind_index_equal_for_equal_identities() -> None:
    """Case and surrounding spaces in an email do not change its index."""
    key = os.urandom(32)
    first = blind_index(key, "email", "  Alice@Example.COM ")
    assert first == blind_index(key, "email", "alice@example.com")
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_blind_index_differs_for_different_values_and_keys() -> None:
    """Different identities, or a different key, give different indexes."""
    key = os.urandom(32)
    assert blind_index(key, "email", "a@x.io") != blind_index(key, "email", "b@x.io")
    assert blind_index(key, "email", "a@x.io") != blind_index(os.urandom(32), "email", "a@x.io")


def test_blind_index_kinds_never_collide() -> None:
    """The same text under two kinds of identity gives different indexes."""
    key = os.urandom(32)
    assert blind_index(key, "email", "ann@example.com") != blind_index(
        key, "login", "ann@example.com"
    )
    assert blind_index(key, "phone", "+15551234567") != blind_index(key, "account", "+15551234567")


def test_phone_normalisation() -> None:
    """Phone numbers keep only a leading plus and their digits."""
    assert normalize_identity("phone", " +1 (555) 123-4567 ") == "+15551234567"
    assert normalize_identity("phone", "555.123.4567") == "5551234567"
    key = os.urandom(32)
    assert blind_index(key, "phone", "+1 555 123 4567") == blind_index(key, "phone", "+15551234567")


def test_email_normalisation() -> None:
    """Emails are stripped and lowercased."""
    assert normalize_identity("email", "\tBob@Example.org\n") == "bob@example.org"


@pytest.mark.parametrize("value", ["", "+1", "12-34", "phone", "+1234567890123456"])
def test_bad_phone_rejected(value: str) -> None:
    """Phone numbers with too few (or too many) digits are refused."""
    with pytest.raises(ValueError):
        normalize_identity("phone", value)


# --- signed tokens --------------------------------------------------------------------------


def test_token_round_trip() -> None:
    """A signed token verifies and yields its claims plus iat and exp."""
    key = os.urandom(32)
    token = sign_token(key, {"sub": "s1", "scope": "prefs"}, now=NOW, ttl_seconds=900)
    claims = verify_token(key, token, now=NOW + timedelta(seconds=899))
    assert claims["sub"] == "s1"
    assert claims["scope"] == "prefs"
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == int(NOW.timestamp()) + 900
    assert "=" not in token
    assert token.count(".") == 1


def _reason(key: bytes, token: str, now: datetime = NOW) -> str:
    with pytest.raises(TokenError) as caught:
        verify_token(key, token, now=now)
    return caught.value.reason


def test_token_expires() -> None:
    """A token is refused as expired at and after its exp."""
    key = os.urandom(32)
    token = sign_token(key, {"sub": "s1"}, now=NOW, ttl_seconds=60)
    assert _reason(key, token, NOW + timedelta(seconds=60)) == "expired"
    assert _reason(key, token, NOW + timedelta(days=1)) == "expired"


def test_token_bad_signature() -> None:
    """A token signed with another key, or with altered claims, has a bad signature."""
    key = os.urandom(32)
    token = sign_token(key, {"sub": "s1"}, now=NOW, ttl_seconds=60)
    assert _reason(os.urandom(32), token) == "bad signature"
    _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"s2","iat":0,"exp":9999999999}').rstrip(b"=")
    assert _reason(key, forged.decode() + "." + signature) == "bad signature"


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", ".sig", "abc.", "ab!c.def", "é.x", "x" * 9000]
)
def test_token_malformed(token: str) -> None:
    """Strings that are not tokens are refused as malformed."""
    assert _reason(os.urandom(32), token) == "malformed"


def test_non_canonical_signature_encoding_is_malformed() -> None:
    """Only the canonical base64url form of a signature is accepted."""
    key = os.urandom(32)
    token = sign_token(key, {"sub": "s1"}, now=NOW, ttl_seconds=60)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]  # same 32 bytes: only the unused low bits differ
    assert _reason(key, twin) == "malformed"
    assert _reason(key, token + "==") == "malformed"


def test_validly_signed_garbage_is_malformed() -> None:
    """A correctly signed payload that is not a claims object is refused as malformed."""
    key = os.urandom(32)
    for body in (b"[1,2]", b"not json", b'{"sub":"s1"}', b'{"exp":"soon"}'):
        payload = base64.urlsafe_b64encode(body).rstrip(b"=")
        mac = hmac.new(key, payload, hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(mac).rstrip(b"=")
        assert _reason(key, (payload + b"." + signature).decode()) == "malformed"


def test_token_needs_aware_time() -> None:
    """Naive datetimes are refused rather than guessed at."""
    with pytest.raises(ValueError):
        sign_token(os.urandom(32), {}, now=datetime(2025, 1, 1), ttl_seconds=60)


# --- secrets and API keys -------------------------------------------------------------------


def test_new_secret_stores_only_digest() -> None:
    """A single-use secret comes with its sha256 digest, which matches on re-hash."""
    token, digest = new_secret()
    assert hash_secret(token) == digest
    assert token not in digest
    assert len(digest) == 64
    assert new_secret()[0] != token


def test_api_key_round_trip() -> None:
    """A full API key parses back to its id and a secret whose hash is the stored one."""
    key_id, full, stored = new_api_key()
    assert full.startswith(f"ck_{key_id}_")
    parsed = parse_api_key(full)
    assert parsed is not None
    assert parsed[0] == key_id
    assert hash_api_key_secret(parsed[1]) == stored
    assert parsed[1] not in stored


@pytest.mark.parametrize(
    "text", ["", "ck_", "ck_abc", "xx_0123456789abcdef_secretsecretsecret", "ck_0123456789abcdef_"]
)
def test_parse_api_key_rejects_non_keys(text: str) -> None:
    """Strings that are not API keys parse to None."""
    assert parse_api_key(text) is None
