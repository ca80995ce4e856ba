"""The RFC 6962 / RFC 9162 Merkle tree over the audit log, checked against the RFC itself.

`ref_mth`, `ref_path` and `ref_proof` below are RFC 6962 section 2.1 transcribed literally
(recursive, slow, obviously correct), working on the raw leaves with hashlib directly. Everything
in `consentry.audit.merkle` is compared with them: exhaustively for every tree of 1..70 leaves
(every index, every old size) and with hypothesis for larger trees. The verifiers are also fed
thousands of wrong proofs and claims, none of which may verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.audit.frontier import Frontier
from consentry.audit.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    range_root,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- the reference: RFC 6962 section 2.1, word for word -------------------------------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two smaller than n (n > 1), by counting: no bit tricks."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the raw leaves d."""
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = largest_power_of_two_below(n)
    return sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf m, bottom-up."""
    n = len(d)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return ref_subproof(m, d, True)


# --- data -----------------------------------------------------------------------------------

# Leaves as the service has them: 32-byte chain hashes, all distinct.
N_MAX = 2100
DATA: list[bytes] = [sha(b"audit entry %d" % i) for i in range(N_MAX)]
LEAVES: list[bytes] = [sha(b"\x00" + d) for d in DATA]  # their leaf hashes, by hand


@cache
def honest_root(n: int) -> bytes:
    return ref_mth(DATA[:n])


@cache
def honest_path(index: int, n: int) -> tuple[bytes, ...]:
    return tuple(ref_path(index, DATA[:n]))


@cache
def honest_proof(m: int, n: int) -> tuple[bytes, ...]:
    return tuple(ref_proof(m, DATA[:n]))


def flip(blob: bytes, bit: int) -> bytes:
    changed = bytearray(blob)
    changed[(bit // 8) % len(blob)] ^= 1 << (bit % 8)
    return bytes(changed)


def largest_power_of_two_at_most(n: int) -> int:
    k = 1
    while k * 2 <= n:
        k *= 2
    return k


def all_perfect_subtrees(n: int) -> set[tuple[int, int]]:
    """Every perfect aligned subtree (level >= 1) lying wholly inside [0, n)."""
    found: set[tuple[int, int]] = set()
    level = 1
    while 2**level <= n:
        found.update((level, i) for i in range(n // 2**level))
        level += 1
    return found


def subtree_hash(level: int, index: int) -> bytes:
    return honest_range(index * 2**level, (index + 1) * 2**level)


@cache
def honest_range(start: int, end: int) -> bytes:
    return ref_mth(DATA[start:end])


def store_for(start: int, end: int) -> dict[tuple[int, int], bytes]:
    """What the service's table would give: the needed perfect subtree hashes, from the ref."""
    return {(lv, ix): subtree_hash(lv, ix) for lv, ix in perfect_subtrees(start, end)}


# --- hashing primitives and known answers ---------------------------------------------------

# The RFC 6962 test vectors used by Certificate Transparency implementations.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
H01 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"  # leaf hash of "\x00"
H23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"  # MTH(D[2:4])
H47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"  # MTH(D[4:8])
H4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"  # leaf hash of D[4]
H45 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"  # MTH(D[4:6])
H67 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"  # MTH(D[6:8])
H03 = CT_ROOTS[4]  # MTH(D[0:4])
CT_INCLUSION = {  # (index, size): path
    (0, 8): [H01, H23, H47],
    (5, 8): [H4, H67, H03],
    (2, 3): [CT_ROOTS[2]],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", H23, H4],
}
CT_CONSISTENCY = {  # (old size, new size): proof
    (1, 1): [],
    (1, 8): [H01, H23, H47],
    (6, 8): [H45, H67, H03],
    (2, 5): [H23, H4],
}


def test_leaf_and_node_hashes_are_the_rfc_prefix_hashes() -> None:
    for data in (b"", b"\x00", b"x" * 32, bytes(range(256))):
        assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    left, right = sha(b"left"), sha(b"right")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)
    assert leaf_hash(left + right) != node_hash(left, right)  # domain separation


def test_empty_root() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_ct_known_roots(size: int) -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES[:size]]
    assert root(leaves).hex() == CT_ROOTS[size]
    assert ref_mth(CT_LEAVES[:size]).hex() == CT_ROOTS[size]  # the reference agrees
    frontier = Frontier()
    frontier.extend(leaves)
    assert frontier.root().hex() == CT_ROOTS[size]


def test_ct_size_8_root_literal() -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES]
    expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert root(leaves) == bytes.fromhex(expected)


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_ct_known_inclusion_proofs(index: int, size: int) -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES[:size]]
    proof = inclusion_proof(index, leaves)
    assert [p.hex() for p in proof] == CT_INCLUSION[index, size]
    assert verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CT_CONSISTENCY))
def test_ct_known_consistency_proofs(old: int, new: int) -> None:
    leaves = [leaf_hash(d) for d in CT_LEAVES[:new]]
    proof = consistency_proof(old, leaves)
    assert [p.hex() for p in proof] == CT_CONSISTENCY[old, new]
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


# --- everything against the reference, every tree of 1..70 leaves ---------------------------


@pytest.mark.parametrize("n", range(1, 71))
def test_exhaustive_against_reference(n: int) -> None:
    data, leaves = DATA[:n], LEAVES[:n]
    assert [leaf_hash(d) for d in data] == leaves
    tree_root = root(leaves)
    assert tree_root == ref_mth(data)

    for index in range(n):
        proof = inclusion_proof(index, leaves)
        assert proof == ref_path(index, data), index
        ranges = inclusion_ranges(index, n)
        assert [ref_mth(data[s:e]) for s, e in ranges] == proof
        assert [range_root(s, e, store_for(s, e)) for s, e in ranges] == proof
        assert verify_inclusion(leaves[index], index, n, proof, tree_root)

    for old in range(1, n + 1):
        proof = consistency_proof(old, leaves)
        assert proof == ref_proof(old, data), old
        ranges = consistency_ranges(old, n)
        assert [ref_mth(data[s:e]) for s, e in ranges] == proof
        assert [range_root(s, e, store_for(s, e)) for s, e in ranges] == proof
        assert verify_consistency(old, n, ref_mth(data[:old]), tree_root, proof)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_large_trees_against_reference(draw: st.DataObject) -> None:
    n = draw.draw(st.integers(min_value=71, max_value=N_MAX), label="size")
    index = draw.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    old = draw.draw(st.integers(min_value=1, max_value=n), label="old size")
    data, leaves = DATA[:n], LEAVES[:n]
    tree_root = root(leaves)
    assert tree_root == honest_root(n)

    proof = inclusion_proof(index, leaves)
    assert proof == ref_path(index, data)
    assert verify_inclusion(leaves[index], index, n, proof, tree_root)
    ranges = inclusion_ranges(index, n)
    assert [range_root(s, e, store_for(s, e)) for s, e in ranges] == proof

    cproof = consistency_proof(old, leaves)
    assert cproof == ref_proof(old, data)
    assert verify_consistency(old, n, honest_root(old), tree_root, cproof)
    cranges = consistency_ranges(old, n)
    assert [range_root(s, e, store_for(s, e)) for s, e in cranges] == cproof


def test_root_of_powers_of_two_and_neighbours() -> None:
    for k in range(12):
        for n in {2**k - 1, 2**k, 2**k + 1} - {0}:
            assert root(LEAVES[:n]) == honest_root(n), n


def test_root_accepts_any_sequence() -> None:
    assert root(tuple(LEAVES[:13])) == honest_root(13)
    assert root(LEAVES[:1]) == LEAVES[0]


# --- ranges and perfect subtrees ------------------------------------------------------------


def precondition_holds(start: int, end: int) -> bool:
    """The documented precondition of perfect_subtrees / range_root."""
    n = end - start
    return 0 <= start < end and (n == 1 or start % largest_power_of_two_below(n) == 0)


def test_perfect_subtrees_tile_every_valid_range_and_rebuild_its_mth() -> None:
    for start in range(0, 130):
        for end in range(start + 1, 131):
            if not precondition_holds(start, end):
                with pytest.raises(ValueError, match="RFC 6962 recursion"):
                    perfect_subtrees(start, end)
                continue
            subtrees = perfect_subtrees(start, end)
            position = start
            for level, index in subtrees:
                assert level >= 0
                assert index * 2**level == position, (start, end, subtrees)  # aligned, in order
                position += 2**level
            assert position == end
            assert range_root(start, end, store_for(start, end)) == honest_range(start, end)


def test_every_proof_range_meets_the_precondition() -> None:
    for n in range(1, 200):
        for index in range(n):
            assert all(precondition_holds(s, e) for s, e in inclusion_ranges(index, n))
        for old in range(1, n + 1):
            assert all(precondition_holds(s, e) for s, e in consistency_ranges(old, n))


def test_perfect_subtrees_examples() -> None:
    assert perfect_subtrees(0, 1) == [(0, 0)]
    assert perfect_subtrees(5, 6) == [(0, 5)]
    assert perfect_subtrees(0, 8) == [(3, 0)]
    assert perfect_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert perfect_subtrees(8, 13) == [(2, 2), (0, 12)]
    assert perfect_subtrees(2, 6) == [(1, 1), (1, 2)]  # a power of two, aligned only to half
    assert perfect_subtrees(0, 1_000_000) == [
        (19, 0),
        (18, 2),
        (17, 6),
        (16, 14),
        (14, 60),
        (9, 1952),
        (6, 15624),
    ]


@pytest.mark.parametrize(("start", "end"), [(0, 0), (3, 3), (5, 4), (-1, 1), (1, 4), (2, 10)])
def test_perfect_subtrees_rejects_ranges_outside_the_precondition(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        perfect_subtrees(start, end)
    with pytest.raises(ValueError):
        range_root(start, end, {})


def test_range_root_nests_to_the_right_not_a_left_fold() -> None:
    # [0, 7) = [0, 4) + [4, 6) + [6, 7): RFC 6962 gives node(h03, node(h45, h6)).
    h03, h45, h6 = subtree_hash(2, 0), subtree_hash(1, 2), subtree_hash(0, 6)
    store = {(2, 0): h03, (1, 2): h45, (0, 6): h6}
    expected = ref_mth(DATA[:7])
    assert range_root(0, 7, store) == expected == node_hash(h03, node_hash(h45, h6))
    assert node_hash(node_hash(h03, h45), h6) != expected  # the tempting left fold is wrong


def test_range_root_names_missing_subtrees_and_ignores_extras() -> None:
    store = store_for(0, 7)
    extra = {**store, (5, 0): b"\xff" * 32, (0, 0): b"\xee" * 32}
    assert range_root(0, 7, extra) == honest_range(0, 7)
    del store[1, 2]
    with pytest.raises(KeyError, match=r"\(1, 2\)"):
        range_root(0, 7, store)


def test_range_root_from_a_frontier_built_store() -> None:
    """The service's way: the table holds what Frontier.append reported, plus the leaves."""
    n = 333
    store: dict[tuple[int, int], bytes] = {(0, i): LEAVES[i] for i in range(n)}
    frontier = Frontier()
    for level, index, digest in frontier.extend(LEAVES[:n]):
        store[level, index] = digest
    for size in range(1, n + 1):
        tree_root = range_root(0, size, store)
        assert tree_root == honest_root(size)
        for index in (0, size // 3, size - 1):
            path = [range_root(s, e, store) for s, e in inclusion_ranges(index, size)]
            assert path == list(honest_path(index, size))
            assert verify_inclusion(LEAVES[index], index, size, path, tree_root)
        for old in (1, size // 2 or 1, size):
            proof = [range_root(s, e, store) for s, e in consistency_ranges(old, size)]
            assert proof == list(honest_proof(old, size))
            assert verify_consistency(old, size, honest_root(old), tree_root, proof)


def test_inclusion_ranges_examples_and_errors() -> None:
    assert inclusion_ranges(0, 1) == []
    assert inclusion_ranges(0, 8) == [(1, 2), (2, 4), (4, 8)]
    assert inclusion_ranges(6, 7) == [(4, 6), (0, 4)]
    assert inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    for index, size in [(0, 0), (1, 1), (5, 5), (9, 5), (-1, 5), (0, -3)]:
        with pytest.raises(ValueError):
            inclusion_ranges(index, size)
        with pytest.raises(ValueError):
            inclusion_proof(index, LEAVES[: max(size, 0)])


def test_consistency_ranges_examples_and_errors() -> None:
    assert consistency_ranges(5, 5) == []
    assert consistency_ranges(1, 1) == []
    assert consistency_ranges(4, 8) == [(4, 8)]
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]
    for old, new in [(0, 0), (0, 5), (6, 5), (-1, 3), (2, 1)]:
        with pytest.raises(ValueError):
            consistency_ranges(old, new)
        with pytest.raises(ValueError):
            consistency_proof(old, LEAVES[: max(new, 0)])


# --- Frontier -------------------------------------------------------------------------------


def test_frontier_matches_root_and_reports_exactly_the_perfect_subtrees() -> None:
    n = 300
    expected_hashes = {key: subtree_hash(*key) for key in all_perfect_subtrees(n)}
    frontier = Frontier()
    reported: dict[tuple[int, int], bytes] = {}
    for count, leaf in enumerate(LEAVES[:n], start=1):
        completed = frontier.append(leaf)
        assert frontier.size == count
        assert frontier.root() == honest_root(count)
        # The levels completed by appending leaf number count-1 are 1..(trailing ones of it).
        position = count - 1
        trailing_ones = (position ^ (position + 1)).bit_length() - 1
        assert [level for level, _, _ in completed] == list(range(1, trailing_ones + 1))
        for level, index, digest in completed:
            assert (level, index) not in reported  # never reported twice
            assert (index + 1) * 2**level == count  # it ends at the newest leaf
            reported[level, index] = digest
        assert set(reported) == all_perfect_subtrees(count)
        assert len(frontier.hashes) == count.bit_count()
    assert reported == expected_hashes


def test_frontier_extend_equals_appends() -> None:
    one, other = Frontier(), Frontier()
    by_append = [t for leaf in LEAVES[:77] for t in one.append(leaf)]
    assert other.extend(LEAVES[:77]) == by_append
    assert one == other
    assert other.extend([]) == []
    assert other.size == 77


def test_frontier_of_many_leaves() -> None:
    n = 100_000
    leaves = [sha(b"%d" % i) for i in range(n)]
    frontier = Frontier()
    reported = frontier.extend(leaves)
    assert len(reported) == n - n.bit_count()  # a full binary forest: one node per merge
    assert frontier.root() == root(leaves)
    assert (16, 0, root(leaves[: 2**16])) in reported


def test_frontier_json_round_trip() -> None:
    frontier = Frontier()
    for count in range(0, 70):
        saved = frontier.to_json()
        assert saved["size"] == count
        assert len(saved["hashes"]) == count.bit_count()
        assert all(len(h) == 64 and h == h.lower() for h in saved["hashes"])
        restored = Frontier.from_json(json.loads(json.dumps(saved)))
        assert restored == frontier
        assert restored.size == frontier.size
        assert restored.root() == frontier.root() == honest_root(count)
        # A restored frontier carries on exactly like the original.
        assert restored.append(LEAVES[count]) == frontier.append(LEAVES[count])
        assert restored.root() == frontier.root()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=8))
def test_frontier_survives_saves_at_any_point(chunks: list[int]) -> None:
    frontier, reported = Frontier(), []
    done = 0
    for chunk in chunks:
        reported += frontier.extend(LEAVES[done : done + chunk])
        done += chunk
        frontier = Frontier.from_json(json.loads(json.dumps(frontier.to_json())))
    assert frontier.size == done
    assert frontier.root() == honest_root(done)
    assert {(lv, ix) for lv, ix, _ in reported} == all_perfect_subtrees(done)
    assert all(digest == subtree_hash(lv, ix) for lv, ix, digest in reported)


GOOD_HASH = "ab" * 32


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ("size=1", "JSON object"),
        ({}, "size"),
        ({"hashes": []}, "size"),
        ({"size": -1, "hashes": []}, "size"),
        ({"size": True, "hashes": [GOOD_HASH]}, "size"),
        ({"size": "1", "hashes": [GOOD_HASH]}, "size"),
        ({"size": 1.0, "hashes": [GOOD_HASH]}, "size"),
        ({"size": 1}, "hashes"),
        ({"size": 1, "hashes": GOOD_HASH}, "hashes"),
        ({"size": 0, "hashes": [GOOD_HASH]}, "holds 0 hashes"),
        ({"size": 1, "hashes": []}, "holds 1 hashes"),
        ({"size": 3, "hashes": [GOOD_HASH]}, "holds 2 hashes"),
        ({"size": 4, "hashes": [GOOD_HASH, GOOD_HASH]}, "holds 1 hashes"),
        ({"size": 1, "hashes": [GOOD_HASH[:-1]]}, "64 hex digits"),
        ({"size": 1, "hashes": [GOOD_HASH + "a"]}, "64 hex digits"),
        ({"size": 1, "hashes": [GOOD_HASH[:-2]]}, "64 hex digits"),
        ({"size": 1, "hashes": [bytes(32)]}, "64 hex digits"),
        ({"size": 1, "hashes": [None]}, "64 hex digits"),
        ({"size": 1, "hashes": ["zz" + GOOD_HASH[2:]]}, "not valid hex"),
        ({"size": 1, "hashes": ["ab  " + GOOD_HASH[4:]]}, "not valid hex"),  # 31 bytes
        ({"size": 3, "hashes": [GOOD_HASH, "g" * 64]}, "hash 1 is not valid hex"),
    ],
)
def test_frontier_from_json_rejects_bad_input(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Frontier.from_json(data)


def test_frontier_from_json_accepts_uppercase_hex() -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:5])
    saved = frontier.to_json()
    saved["hashes"] = [h.upper() for h in saved["hashes"]]
    assert Frontier.from_json(saved) == frontier


@pytest.mark.parametrize("leaf", [b"", b"x" * 31, b"x" * 33, "ab" * 16, None])
def test_frontier_append_takes_only_32_byte_leaf_hashes(leaf: Any) -> None:
    frontier = Frontier()
    with pytest.raises(ValueError, match="32 bytes"):
        frontier.append(leaf)
    assert frontier.size == 0


# --- wrong proofs never verify --------------------------------------------------------------

N_WRONG = 300  # trees of up to this many leaves for the mutation tests

hash_bytes = st.binary(min_size=32, max_size=32)


def other_than(draw: st.DataObject, excluded: int, highest: int) -> int:
    """Any integer in [0, highest] but `excluded` (which must lie in that range)."""
    value = draw.draw(st.integers(0, highest - 1))
    return value + 1 if value >= excluded else value


def mutate_list(draw: st.DataObject, proof: list[bytes], kind: str) -> list[bytes]:
    """A different proof: one hash changed, dropped, added, or two swapped."""
    proof = list(proof)

    def pick(n: int) -> int:
        return draw.draw(st.integers(0, n - 1))

    if kind == "flip":
        at = pick(len(proof))
        proof[at] = flip(proof[at], draw.draw(st.integers(0, 255)))
    elif kind == "drop":
        del proof[pick(len(proof))]
    elif kind == "extra random":
        proof.insert(pick(len(proof) + 1), draw.draw(hash_bytes))
    elif kind == "extra duplicate":
        proof.insert(pick(len(proof) + 1), proof[pick(len(proof))])
    elif kind == "swap":
        first, second = pick(len(proof)), pick(len(proof))
        proof[first], proof[second] = proof[second], proof[first]
    elif kind == "short hash":
        at = pick(len(proof))
        proof[at] = proof[at][:31]
    elif kind == "long hash":
        at = pick(len(proof))
        proof[at] = proof[at] + draw.draw(st.binary(min_size=1, max_size=1))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return proof


LIST_MUTATIONS = [
    "flip",
    "drop",
    "extra random",
    "extra duplicate",
    "swap",
    "short hash",
    "long hash",
]
NEEDS_ONE = {"flip", "drop", "extra duplicate", "short hash", "long hash"}


def inclusion_is_true(leaf: bytes, index: int, size: int, proof: list[bytes], r: bytes) -> bool:
    """The exact oracle: the claim is true and the proof is the one honest proof."""
    return (
        0 <= index < size <= N_MAX
        and leaf == LEAVES[index]
        and r == honest_root(size)
        and tuple(proof) == honest_path(index, size)
    )


INCLUSION_MUTATIONS = [
    *LIST_MUTATIONS,
    "index + 1",
    "index - 1",
    "index >= size",
    "negative index",
    "size + 1",
    "size - 1",
    "size 0",
    "other leaf",
    "random leaf",
    "leaf flipped",
    "short leaf",
    "long leaf",
    "node as leaf",
    "random root",
    "root flipped",
    "other size's root",
    "short root",
    "long root",
]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_wrong_inclusion_proofs_never_verify(draw: st.DataObject) -> None:
    size = draw.draw(st.integers(1, N_WRONG), label="size")
    index = draw.draw(st.integers(0, size - 1), label="index")
    leaf, r = LEAVES[index], honest_root(size)
    proof = list(honest_path(index, size))
    assert verify_inclusion(leaf, index, size, proof, r)  # the honest claim verifies

    kinds = [k for k in INCLUSION_MUTATIONS if proof or k not in NEEDS_ONE | {"swap"}]
    kind = draw.draw(st.sampled_from(kinds), label="mutation")
    if kind in LIST_MUTATIONS:
        proof = mutate_list(draw, proof, kind)
        if tuple(proof) == honest_path(index, size):  # a swap of a hash with itself
            return
    elif kind == "index + 1":
        index += 1
    elif kind == "index - 1":
        if index == 0:
            return
        index -= 1
    elif kind == "index >= size":
        index = draw.draw(st.integers(size, size + 70))
    elif kind == "negative index":
        index = draw.draw(st.integers(-(2**70), -1))
    elif kind == "size + 1":  # with the genuine root of the claimed size
        size += 1
        r = honest_root(size)
    elif kind == "size - 1":
        size -= 1
        r = honest_root(size)
    elif kind == "size 0":
        size, r = 0, EMPTY_ROOT
    elif kind == "other leaf":
        other = other_than(draw, index, max(size - 1, 1))  # a leaf of the tree, or next one
        leaf = LEAVES[other]
    elif kind == "random leaf":
        leaf = draw.draw(hash_bytes)
    elif kind == "leaf flipped":
        leaf = flip(leaf, draw.draw(st.integers(0, 255)))
    elif kind == "short leaf":
        leaf = leaf[:31]
    elif kind == "long leaf":
        leaf = leaf + b"\x00"
    elif kind == "node as leaf":  # an interior node passed off as a leaf, path shortened
        if not proof:
            return
        leaf = node_hash(leaf, proof[0]) if index % 2 == 0 else node_hash(proof[0], leaf)
        proof = proof[1:]
    elif kind == "random root":
        r = draw.draw(hash_bytes)
    elif kind == "root flipped":
        r = flip(r, draw.draw(st.integers(0, 255)))
    elif kind == "other size's root":
        other = other_than(draw, size, N_WRONG)
        r = honest_root(other)
    elif kind == "short root":
        r = r[:31]
    elif kind == "long root":
        r = r + b"\x00"
    else:  # pragma: no cover
        raise AssertionError(kind)

    assert not inclusion_is_true(leaf, index, size, proof, r), kind  # it is a real change
    assert verify_inclusion(leaf, index, size, proof, r) is False, kind


def consistency_is_true(old: int, new: int, old_r: bytes, new_r: bytes, proof: list[bytes]) -> bool:
    """The exact oracle: both tree heads are genuine and the proof is the one honest proof."""
    return (
        0 < old <= new <= N_MAX
        and old_r == honest_root(old)
        and new_r == honest_root(new)
        and tuple(proof) == honest_proof(old, new)
    )


CONSISTENCY_MUTATIONS = [
    *LIST_MUTATIONS,
    "old size + 1",
    "old size - 1",
    "new size + 1",
    "new size - 1",
    "sizes swapped",
    "old size 0",
    "old size 0, no proof",
    "equal sizes, some proof",
    "negative old size",
    "random old root",
    "random new root",
    "old root flipped",
    "new root flipped",
    "roots swapped",
    "other old root",
    "other new root",
    "short old root",
    "long new root",
    "empty proof",
]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_wrong_consistency_proofs_never_verify(draw: st.DataObject) -> None:
    new = draw.draw(st.integers(1, N_WRONG), label="new size")
    old = draw.draw(st.integers(1, new), label="old size")
    old_r, new_r = honest_root(old), honest_root(new)
    proof = list(honest_proof(old, new))
    assert verify_consistency(old, new, old_r, new_r, proof)  # the honest claim verifies

    kinds = [k for k in CONSISTENCY_MUTATIONS if proof or k not in NEEDS_ONE | {"swap"}]
    kind = draw.draw(st.sampled_from(kinds), label="mutation")
    if kind in LIST_MUTATIONS:
        proof = mutate_list(draw, proof, kind)
        if tuple(proof) == honest_proof(old, new):  # a swap of a hash with itself
            return
    elif kind in {"old size + 1", "old size - 1", "new size + 1", "new size - 1"}:
        # The genuine roots of the claimed sizes: only the proof is stale.
        step = 1 if kind.endswith("+ 1") else -1
        if kind.startswith("old"):
            old += step
        else:
            new += step
        if old < 1 or new > N_WRONG:
            return
        old_r, new_r = honest_root(old), honest_root(new)
    elif kind == "sizes swapped":
        if old == new:
            return
        old, new, old_r, new_r = new, old, new_r, old_r
    elif kind == "old size 0":
        old, old_r = 0, EMPTY_ROOT
    elif kind == "old size 0, no proof":
        old, old_r, proof = 0, EMPTY_ROOT, []
    elif kind == "equal sizes, some proof":
        old, old_r = new, new_r
        proof = proof or [draw.draw(hash_bytes)]
    elif kind == "negative old size":
        old = draw.draw(st.integers(-(2**70), -1))
    elif kind == "random old root":
        old_r = draw.draw(hash_bytes)
    elif kind == "random new root":
        new_r = draw.draw(hash_bytes)
    elif kind == "old root flipped":
        old_r = flip(old_r, draw.draw(st.integers(0, 255)))
    elif kind == "new root flipped":
        new_r = flip(new_r, draw.draw(st.integers(0, 255)))
    elif kind == "roots swapped":
        if old == new:
            return
        old_r, new_r = new_r, old_r
    elif kind == "other old root":
        old_r = honest_root(other_than(draw, old, N_WRONG))
    elif kind == "other new root":
        new_r = honest_root(other_than(draw, new, N_WRONG))
    elif kind == "short old root":
        old_r = old_r[:31]
    elif kind == "long new root":
        new_r = new_r + b"\x00"
    elif kind == "empty proof":
        if not proof:
            return
        proof = []
    else:  # pragma: no cover
        raise AssertionError(kind)

    assert not consistency_is_true(old, new, old_r, new_r, proof), kind  # a real change
    assert verify_consistency(old, new, old_r, new_r, proof) is False, kind


def test_the_size_is_bound_through_the_root() -> None:
    """RFC 9162 verification binds a size to a proof only together with that size's root.

    Leaf 0's path in the 5-leaf tree, [D1, MTH(D[2:4]), D4], has the shape of a 6-leaf path too,
    so it "verifies" against the 5-leaf root claimed as size 6. That root is not the 6-leaf
    tree's, so a verifier holding the genuine tree head of size 6 rejects it.
    """
    path5 = list(honest_path(0, 5))
    assert verify_inclusion(LEAVES[0], 0, 5, path5, honest_root(5))
    assert verify_inclusion(LEAVES[0], 0, 6, path5, honest_root(5))  # no genuine tree head
    assert not verify_inclusion(LEAVES[0], 0, 6, path5, honest_root(6))


def test_trivial_trees() -> None:
    leaf = LEAVES[0]
    assert inclusion_proof(0, [leaf]) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], LEAVES[1])
    assert not verify_inclusion(leaf, 0, 0, [], leaf)
    assert consistency_proof(1, [leaf]) == []
    assert verify_consistency(1, 1, leaf, leaf, [])
    assert not verify_consistency(1, 1, leaf, LEAVES[1], [])
    assert not verify_consistency(1, 1, leaf, leaf, [leaf])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, leaf, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, leaf, [leaf])


JUNK = [None, "ab" * 32, 32, bytearray(32), memoryview(bytes(32)), [b"x" * 32], 1.5, True]


def test_verifiers_return_false_on_junk_types() -> None:
    leaf, r5 = LEAVES[2], honest_root(5)
    path = list(honest_path(2, 5))
    proof = list(honest_proof(3, 5))
    r3 = honest_root(3)
    incl = cast(Callable[..., bool], verify_inclusion)
    cons = cast(Callable[..., bool], verify_consistency)
    for junk in JUNK:
        assert incl(junk, 2, 5, path, r5) is False
        assert incl(leaf, 2, 5, path, junk) is False
        assert incl(leaf, 2, 5, [junk, *path[1:]], r5) is False
        assert cons(3, 5, junk, r5, proof) is False
        assert cons(3, 5, r3, junk, proof) is False
        assert cons(3, 5, r3, r5, [*proof[:-1], junk]) is False
        if not isinstance(junk, list):
            assert incl(leaf, junk, 5, path, r5) is False
            assert incl(leaf, 2, junk, path, r5) is False
            assert cons(junk, 5, r3, r5, proof) is False
            assert cons(3, junk, r3, r5, proof) is False
            assert incl(leaf, 2, 5, junk, r5) is False
            assert cons(3, 5, r3, r5, junk) is False
    # The untouched claims still hold.
    assert incl(leaf, 2, 5, path, r5) is True
    assert cons(3, 5, r3, r5, proof) is True


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(-(2**65), 2**65),
    size=st.integers(-(2**65), 2**65),
    leaf=st.binary(max_size=40),
    proof=st.lists(st.binary(max_size=40), max_size=70),
    r=st.binary(max_size=40),
)
def test_verifiers_never_raise(
    index: int, size: int, leaf: bytes, proof: list[bytes], r: bytes
) -> None:
    # Without a hash preimage only the one-leaf tree and equal sizes can pass by chance.
    trivial = len(leaf) == 32 and leaf == r and not proof
    assert verify_inclusion(leaf, index, size, proof, r) is (trivial and index == 0 < size == 1)
    assert verify_consistency(index, size, leaf, r, proof) is (trivial and 0 < index == size)


def test_push_is_append_without_the_checks() -> None:
    """The verifier's fast `push` builds the same tree and reports the same subtrees."""
    checked, fast = Frontier(), Frontier()
    for i in range(1, 1100):
        leaf = leaf_hash(i.to_bytes(4, "big"))
        assert (fast.push(leaf) or []) == checked.append(leaf)
        assert fast.root() == checked.root() and fast.size == checked.size
