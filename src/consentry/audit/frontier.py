"""The Merkle tree of `audit.merkle` grown leaf by leaf: a compact range (the "frontier").

`Frontier` appends leaves one by one, reports every perfect subtree an append completes (what the
service stores, so proofs need no full rebuild) and gives the current root; it saves to and
restores from JSON. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from hashlib import sha256
from typing import Any

from consentry.audit.merkle import (
    _NODE_PREFIX,
    EMPTY_ROOT,
    HASH_SIZE,
    _is_hash,
    _is_index,
    node_hash,
)


class Frontier:
    """The compact range [0, size) of a log that only grows.

    It holds one hash per set bit of `size`: the perfect aligned subtrees that tile [0, size),
    largest (leftmost) first. `append` takes a LEAF HASH.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The hashes of the perfect subtrees tiling [0, size), left to right."""
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the perfect subtrees it completes, lowest level first.

        Each is (level, index, hash) and covers leaves [index * 2**level, (index + 1) * 2**level).
        Level 0 (the leaf itself) is not reported.
        """
        if not _is_hash(leaf):
            raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")
        position = self._size
        completed: list[tuple[int, int, bytes]] = []
        current = leaf
        level = 0
        while (position >> level) & 1:
            current = node_hash(self._hashes.pop(), current)
            level += 1
            completed.append((level, position >> level, current))
        self._hashes.append(current)
        self._size = position + 1
        return completed

    def push(self, leaf: bytes) -> list[tuple[int, int, bytes]] | None:
        """`append` for a trusted caller that already has a 32-byte leaf hash: no checks, and
        None instead of an empty list (the verifier's hot loop)."""
        position = self._size
        self._size = position + 1
        if not position & 1:
            self._hashes.append(leaf)
            return None
        hashes = self._hashes
        completed = []
        level = 0
        while (position >> level) & 1:
            leaf = sha256(_NODE_PREFIX + hashes.pop() + leaf).digest()
            level += 1
            completed.append((level, position >> level, leaf))
        hashes.append(leaf)
        return completed

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append each leaf hash in turn; return all the subtrees completed, in order."""
        completed: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            completed.extend(self.append(leaf))
        return completed

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves [0, size); EMPTY_ROOT when empty."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = node_hash(left, result)
        return result

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form: {"size": int, "hashes": [64-char lowercase hex, ...]}."""
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Frontier:
        """Rebuild a frontier saved by `to_json`; ValueError if `data` is not a valid one."""
        if not isinstance(data, Mapping):
            raise ValueError("a frontier must be a JSON object with 'size' and 'hashes'")
        size = data.get("size")
        hashes = data.get("hashes")
        if not _is_index(size) or size < 0:
            raise ValueError(f"frontier 'size' must be a non-negative integer, got {size!r}")
        if not isinstance(hashes, list):
            raise ValueError("frontier 'hashes' must be a list of hex strings")
        expected = size.bit_count()
        if len(hashes) != expected:
            raise ValueError(
                f"a frontier of size {size} holds {expected} hashes (one per set bit of the "
                f"size), got {len(hashes)}"
            )
        decoded: list[bytes] = []
        for position, text in enumerate(hashes):
            if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
                raise ValueError(
                    f"frontier hash {position} must be a string of {2 * HASH_SIZE} hex digits"
                )
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
            if len(raw) != HASH_SIZE:
                raise ValueError(f"frontier hash {position} is not valid hex: {text!r}")
            decoded.append(raw)
        frontier = cls()
        frontier._size = size
        frontier._hashes = decoded
        return frontier

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"
