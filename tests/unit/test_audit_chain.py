"""The audit hash chain: `chain` links drafts, `verify` names the first entry that does not fit."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.audit.chain import (
    GENESIS_HASH,
    AuditDraft,
    AuditEntry,
    chain,
    link_hash,
    verify,
)

AT = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
POLICY = "sha256:" + "ab" * 32


def drafts(n: int) -> list[AuditDraft]:
    return [
        AuditDraft(
            actor=f"key:k{i % 3}",
            action=("consent.recorded", "customer.updated", "customer.read")[i % 3],
            target=f"subject:{i:04d}",
            details={"n": i, "fields": ["plan", f"f{i}"], "nested": {"ok": i % 2 == 0}},
        )
        for i in range(n)
    ]


def entries(n: int, **kwargs: Any) -> list[AuditEntry]:
    return chain(
        drafts(n),
        head_seq=kwargs.get("head_seq", 0),
        head_hash=kwargs.get("head_hash", GENESIS_HASH),
        at=AT,
        policy_version=POLICY,
    )


# -- round trip --------------------------------------------------------------------------------


def test_chain_then_verify_round_trip() -> None:
    """A freshly chained list verifies, with seqs 1..n and each prev_hash the hash before it."""
    got = entries(12)
    assert verify(got) is None
    assert [e.seq for e in got] == list(range(1, 13))
    assert got[0].prev_hash == GENESIS_HASH
    for before, after in pairwise(got):
        assert after.prev_hash == before.hash
    for e in got:
        assert e.hash == link_hash(e.prev_hash, e.body())
        assert len(e.hash) == 64 and e.hash != e.prev_hash


def test_chain_continues_after_a_head() -> None:
    """Chaining after an existing head continues its seq and hash; verify needs that start."""
    first = entries(5)
    more = chain(
        drafts(3), head_seq=first[-1].seq, head_hash=first[-1].hash, at=AT, policy_version=POLICY
    )
    assert [e.seq for e in more] == [6, 7, 8]
    assert verify(first + more) is None
    assert verify(more, prev_hash=first[-1].hash, start=6) is None
    broken = verify(more)  # from genesis: the slice does not fit
    assert broken is not None and broken.seq == 1


def test_empty_list_verifies() -> None:
    """No entries is an unbroken (empty) chain."""
    assert verify([]) is None


def test_hash_depends_on_previous_hash() -> None:
    """The same body after a different previous hash gives a different link."""
    e = entries(1)[0]
    assert link_hash(GENESIS_HASH, e.body()) != link_hash("f" * 64, e.body())


# -- single field changes ------------------------------------------------------------------------


def _mutate(entry: AuditEntry, field: str) -> AuditEntry:
    if field == "actor":
        return dataclasses.replace(entry, actor=entry.actor + "x")
    if field == "action":
        return dataclasses.replace(entry, action="customer.deleted")
    if field == "target":
        return dataclasses.replace(entry, target=entry.target + "0")
    if field == "details":
        return dataclasses.replace(entry, details={**entry.details, "n": -1})
    if field == "at":
        return dataclasses.replace(entry, at=entry.at + timedelta(microseconds=1))
    if field == "seq":
        return dataclasses.replace(entry, seq=entry.seq + 1)
    if field == "policy_version":
        return dataclasses.replace(entry, policy_version="sha256:" + "cd" * 32)
    if field == "hash":
        return dataclasses.replace(entry, hash="0" * 63 + "1")
    if field == "prev_hash":
        return dataclasses.replace(entry, prev_hash="e" * 64)
    raise AssertionError(field)


FIELDS = [
    "actor",
    "action",
    "target",
    "details",
    "at",
    "seq",
    "policy_version",
    "hash",
    "prev_hash",
]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("position", [0, 4, 9])
def test_a_changed_field_is_reported_at_its_seq(field: str, position: int) -> None:
    """Changing any one field of one entry breaks the chain exactly at that entry's seq."""
    got = entries(10)
    got[position] = _mutate(got[position], field)
    broken = verify(got)
    assert broken is not None
    assert broken.seq == position + 1
    assert broken.expected != broken.found


def test_details_key_order_does_not_matter() -> None:
    """Details are hashed in canonical form: the same mapping in another order still verifies."""
    got = entries(3)
    reordered = dict(reversed(list(got[1].details.items())))
    assert list(reordered) != list(got[1].details)
    got[1] = dataclasses.replace(got[1], details=reordered)
    assert verify(got) is None


def test_nested_details_change_is_reported() -> None:
    """A change deep inside details is caught too."""
    got = entries(4)
    details = {**got[2].details, "nested": {"ok": not got[2].details["nested"]["ok"]}}
    got[2] = dataclasses.replace(got[2], details=details)
    broken = verify(got)
    assert broken is not None and broken.seq == 3


def test_rehashing_a_changed_entry_breaks_the_next_link() -> None:
    """An attacker who recomputes the changed entry's hash is caught at the following entry."""
    got = entries(6)
    forged = dataclasses.replace(got[2], actor="key:attacker")
    forged = dataclasses.replace(forged, hash=link_hash(forged.prev_hash, forged.body()))
    got[2] = forged
    broken = verify(got)
    assert broken is not None and broken.seq == 4


# -- deletion, reordering, insertion -------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 3, 8])
def test_deletion_is_reported_at_the_gap(position: int) -> None:
    """Deleting an entry (not the last) is reported at the seq of the missing entry."""
    got = entries(10)
    del got[position]
    broken = verify(got)
    assert broken is not None and broken.seq == position + 1


def test_truncation_needs_the_head() -> None:
    """Dropping the newest entries leaves a valid prefix: only a comparison with the stored
    head (seq and hash) catches it, so the head must be checked alongside verify."""
    got = entries(10)
    truncated = got[:7]
    assert verify(truncated) is None
    head_seq, head_hash = got[-1].seq, got[-1].hash
    assert (truncated[-1].seq, truncated[-1].hash) != (head_seq, head_hash)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 7), (5, 9)])
def test_reordering_is_reported_at_the_first_moved_entry(i: int, j: int) -> None:
    """Swapping two entries is reported at the seq of the earlier position."""
    got = entries(10)
    got[i], got[j] = got[j], got[i]
    broken = verify(got)
    assert broken is not None and broken.seq == i + 1


@pytest.mark.parametrize("position", [0, 5, 10])
def test_insertion_is_reported_where_it_happens(position: int) -> None:
    """An entry slipped in (a copy of another entry) is reported at the seq of its position."""
    got = entries(10)
    got.insert(position, got[(position + 3) % 10])
    broken = verify(got)
    assert broken is not None and broken.seq == position + 1


def test_forged_insertion_breaks_at_the_displaced_entry() -> None:
    """A well-forged inserted entry (right seq and links) is caught at the entry it displaced."""
    got = entries(6)
    [forged] = chain(
        [AuditDraft("key:attacker", "api_key.created", "api_key:x", {})],
        head_seq=got[2].seq,
        head_hash=got[2].hash,
        at=AT,
        policy_version=POLICY,
    )
    got.insert(3, forged)
    broken = verify(got)
    assert broken is not None and broken.seq == 5  # forged took seq 4; the old seq 4 no longer fits


# -- property ------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=12)
_json_scalar = st.one_of(st.integers(-(10**6), 10**6), st.booleans(), st.none(), _text)
_details = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(_json_scalar, st.lists(_json_scalar, max_size=3)),
    max_size=4,
)
_drafts = st.lists(st.builds(AuditDraft, _text, _text, _text, _details), min_size=1, max_size=25)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[list[AuditEntry], int]:
    """A chain and one random change to it; returns the chain and the seq that must be named."""
    got = chain(
        draw(_drafts), head_seq=0, head_hash=GENESIS_HASH, at=draw(_times), policy_version=POLICY
    )
    n = len(got)
    kinds = ["field", "insert"]
    if n >= 2:
        kinds += ["delete", "swap"]
    kind = draw(st.sampled_from(kinds))
    if kind == "field":
        pos = draw(st.integers(0, n - 1))
        field = draw(st.sampled_from(FIELDS))
        e = got[pos]
        if field in ("actor", "action", "target"):
            new = draw(_text.filter(lambda v: v != getattr(e, field)))
            got[pos] = dataclasses.replace(e, **{field: new})
        elif field == "details":
            new_details = draw(_details.filter(lambda d: d != e.details))
            got[pos] = dataclasses.replace(e, details=new_details)
        elif field == "at":
            delta = draw(st.integers(1, 10**9).map(lambda us: timedelta(microseconds=us)))
            got[pos] = dataclasses.replace(e, at=e.at + delta * draw(st.sampled_from([1, -1])))
        elif field == "seq":
            got[pos] = dataclasses.replace(
                e, seq=draw(st.integers(-5, 100).filter(lambda s: s != e.seq))
            )
        else:
            got[pos] = _mutate(e, field)
        return got, pos + 1
    if kind == "insert":
        # a copy of another entry (a copy of the entry already at pos would be that entry)
        source = draw(st.integers(0, n - 1))
        pos = draw(st.integers(0, n).filter(lambda p: p != source))
        got.insert(pos, got[source])
        return got, pos + 1
    if kind == "delete":
        pos = draw(st.integers(0, n - 2))  # dropping the last one needs the head (see above)
        del got[pos]
        return got, pos + 1
    i = draw(st.integers(0, n - 2))
    j = draw(st.integers(i + 1, n - 1))
    got[i], got[j] = got[j], got[i]
    return got, i + 1


@settings(max_examples=300, deadline=None)
@given(_mutated())
def test_any_single_change_is_reported_at_its_position(case: tuple[list[AuditEntry], int]) -> None:
    """For random chains and one random change, verify names exactly the changed position."""
    got, expected = case
    broken = verify(got)
    assert broken is not None
    assert broken.seq == expected


@settings(max_examples=100, deadline=None)
@given(_drafts, _times)
def test_unchanged_chains_always_verify(ds: list[AuditDraft], at: datetime) -> None:
    """Any list of drafts chains into entries that verify."""
    assert (
        verify(chain(ds, head_seq=0, head_hash=GENESIS_HASH, at=at, policy_version=POLICY)) is None
    )
