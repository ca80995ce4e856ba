"""An RFC 6962 / RFC 9162 Merkle tree over the audit log.

The leaves are the audit entries' 32-byte chain hashes (raw bytes). As in Certificate
Transparency, the tree is built over their *leaf hashes*, and leaves and interior nodes are
hashed with distinct one-byte prefixes so that neither can pass for the other:

    leaf_hash(d)    = SHA-256(0x00 || d)
    node_hash(l, r) = SHA-256(0x01 || l || r)

The Merkle Tree Hash (MTH) of n leaves is SHA-256("") for n == 0, the leaf hash for n == 1, and
otherwise ``node_hash(MTH(D[0:k]), MTH(D[k:n]))`` with k the largest power of two < n. So the
left part is always a perfect subtree and only the right edge is ragged.

The module is pure (no I/O). Besides whole-list helpers (`root`, `inclusion_proof`,
`consistency_proof`) it describes proofs as leaf *ranges* (`inclusion_ranges`,
`consistency_ranges`) whose MTHs a storage layer can assemble from stored perfect aligned
subtrees (`perfect_subtrees`, `range_root`); `audit.frontier` grows the tree leaf by leaf. The
verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 to the letter and return False, never
raise, on any malformed or wrong input.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import TypeGuard

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "range_root",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = sha256(b"").digest()
"""MTH of the empty list."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2): where RFC 6962 splits n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_index(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already computed leaf hashes (not the raw leaves), EMPTY_ROOT for none.

    Built bottom-up one level at a time: pairs are hashed and an odd last node is carried up
    unchanged, which gives exactly the RFC 6962 tree. The hashes' lengths are not checked.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect aligned subtrees (level, index) whose hashes determine MTH(leaves[start:end]).

    Left to right; (level, index) covers leaves [index * 2**level, (index + 1) * 2**level).
    They are the pieces the RFC 6962 recursion cuts [start, end) into: a perfect left part of
    k = (largest power of two < n) leaves, then the same again on the rest.

    Precondition (ValueError otherwise): 0 <= start < end, and either end - start == 1 or start
    is a multiple of the largest power of two strictly less than end - start. That is exactly
    what makes every left part aligned. Every range the RFC 6962 recursion produces satisfies it
    (start is then even a multiple of the smallest power of two >= end - start), so all the
    ranges from `inclusion_ranges` and `consistency_ranges` do.
    """
    if not (_is_index(start) and _is_index(end)) or not 0 <= start < end:
        raise ValueError(f"need 0 <= start < end, got [{start}, {end})")
    if end - start > 1 and start % _split(end - start):
        raise ValueError(
            f"[{start}, {end}) is not a range of the RFC 6962 recursion: start must be a "
            f"multiple of {_split(end - start)}, the largest power of two below its length"
        )
    subtrees: list[tuple[int, int]] = []
    while True:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:  # a perfect aligned subtree: done
            level = n.bit_length() - 1
            subtrees.append((level, start >> level))
            return subtrees
        k = _split(n)
        level = k.bit_length() - 1
        subtrees.append((level, start >> level))
        start += k


def range_root(start: int, end: int, perfect: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH(leaves[start:end]) from the hashes of `perfect_subtrees(start, end)` in `perfect`.

    RFC 6962 nests to the right: with pieces h1, ..., hm (left to right) the result is
    node(h1, node(h2, ... node(h(m-1), hm))), not a left-to-right fold. Same precondition as
    `perfect_subtrees`; KeyError names a missing subtree, extra entries are ignored.
    """
    subtrees = perfect_subtrees(start, end)
    missing = [key for key in subtrees if key not in perfect]
    if missing:
        raise KeyError(f"missing perfect subtree hashes (level, index): {missing}")
    result = perfect[subtrees[-1]]
    for key in reversed(subtrees[:-1]):
        result = node_hash(perfect[key], result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The [start, end) ranges whose MTHs are the inclusion path of leaf `index` among `size`.

    In the order of RFC 9162 section 2.1.3.1 (PATH): bottom-up, the sibling next to the leaf
    first and the one just below the root last. ValueError unless 0 <= index < size.
    """
    if not (_is_index(index) and _is_index(size)) or size <= 0:
        raise ValueError(f"tree size must be a positive integer, got {size!r}")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index!r} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The [start, end) ranges whose MTHs are the consistency proof from old_size to new_size.

    In the order of RFC 9162 section 2.1.4.1 (PROOF / SUBPROOF). [] when the sizes are equal;
    ValueError unless 0 < old_size <= new_size.
    """
    if not (_is_index(old_size) and _is_index(new_size)) or not 0 < old_size <= new_size:
        raise ValueError(f"need 0 < old_size <= new_size, got {old_size!r} and {new_size!r}")
    appended: list[tuple[int, int]] = []
    start, end = 0, new_size
    whole_old_tree = True  # SUBPROOF's b: is [start, old_size) the entire old tree?
    while old_size < end:
        middle = start + _split(end - start)
        if old_size <= middle:
            appended.append((middle, end))
            end = middle
        else:
            appended.append((start, middle))
            start = middle
            whole_old_tree = False
    # Here [start, end) ends at old_size: SUBPROOF(m, D[m], b) is {} if b, else {MTH(D[m])}.
    ranges = [] if whole_old_tree else [(start, end)]
    ranges.extend(reversed(appended))
    return ranges


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The inclusion path of leaf `index` in the tree over `leaf_hashes` (in memory)."""
    return [root(leaf_hashes[s:e]) for s, e in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the first `old_size` leaves to all of `leaf_hashes`."""
    return [root(leaf_hashes[s:e]) for s, e in consistency_ranges(old_size, len(leaf_hashes))]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root`.

    RFC 9162 section 2.1.3.2, step by step; False (never an exception) for any bad input.
    """
    try:
        path = list(proof)
    except TypeError:
        return False
    if not (_is_index(index) and _is_index(size)) or index < 0:
        return False
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in path)):
        return False
    # 1. Compare leaf_index against tree_size. If leaf_index >= tree_size, fail.
    if index >= size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, size - 1
    # 3. Set r to hash.
    r = leaf
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. If sn is equal to 0 and r and the root_hash are equal, the inclusion is proven.
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree (new_size, new_root) extends (old_size, old_root).

    RFC 9162 section 2.1.4.2, step by step, for 0 < old_size < new_size. Equal sizes need an
    empty proof and equal roots (PROOF(m, D[m]) is empty). False, never an exception, for any
    bad input, including old_size == 0 and old_size > new_size.
    """
    try:
        path = list(proof)
    except TypeError:
        return False
    if not (_is_index(old_size) and _is_index(new_size)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(c) for c in path)):
        return False
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not path and hmac.compare_digest(old_root, new_root)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #      LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, that sr equals second_hash, and that sn is 0.
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)
