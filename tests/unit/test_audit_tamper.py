"""Every tampering with the log is caught, at the first bad sequence number: random edits,
deletions, reorderings and insertions, in exports (whole log and slices) and in the rows a
database verification reads. Wrong checkpoints and headers are refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.audit import merkle
from consentry.audit.chain import GENESIS_HASH, AuditDraft, AuditEntry, chain
from consentry.audit.checkpoints import sign_checkpoint
from consentry.audit.export import entry_line, make_header, seq_ranges
from consentry.audit.verify import LogVerifier, verify_export
from consentry.crypto.canonical import canonical_json
from consentry.crypto.signing import KeyRing, SigningKey

KEY = SigningKey(bytes(range(32)))
KEYS = KeyRing([KEY.public])
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SIZE = 120
SUBJECTS = ["subject:aaa", "subject:bbb", "subject:ccc"]


def build_log(size: int = SIZE) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    head, seq = GENESIS_HASH, 0
    for batch in range(0, size, 7):
        drafts = [
            AuditDraft(
                f"key:k{i % 3}",
                ["consent.recorded", "customer.updated", "events.read"][i % 3],
                SUBJECTS[i % 3],
                {"i": i, "purpose": "analytics", "fields": ["plan"]},
            )
            for i in range(batch, min(batch + 7, size))
        ]
        made = chain(
            drafts,
            head_seq=seq,
            head_hash=head,
            at=T0 + timedelta(seconds=batch),
            policy_version="sha256:p",
        )
        entries.extend(made)
        head, seq = made[-1].hash, made[-1].seq
    return entries


LOG = build_log()
LEAVES = [merkle.leaf_hash(bytes.fromhex(e.hash)) for e in LOG]
CHECKPOINT = sign_checkpoint(KEY, SIZE, merkle.root(LEAVES).hex(), LOG[-1].hash, T0)


def export_lines(subject: str | None) -> list[dict[str, Any]]:
    chosen = [e for e in LOG if subject is None or e.target == subject]
    proofs = subject is not None
    header = make_header(
        KEY,
        CHECKPOINT,
        filters={"subject": subject} if subject else {},
        seqs=seq_ranges(e.seq for e in chosen),
        proofs=proofs,
        generated_at=T0,
    )
    lines = [header]
    for e in chosen:
        lines.append(entry_line(e, merkle.inclusion_proof(e.seq - 1, LEAVES) if proofs else None))
    return lines


FULL = export_lines(None)
SLICE = export_lines("subject:bbb")


def encode(lines: list[dict[str, Any]]) -> list[bytes]:
    return [msgspec.json.encode(x) for x in lines]


def first_bad_seq(original: list[dict[str, Any]], mutated: list[dict[str, Any]]) -> int:
    """The seq at the first position where the mutated entries differ from the original."""
    for a, b in zip(original, mutated, strict=False):
        if a != b:
            return int(a["seq"])
    if len(mutated) < len(original):
        return int(original[len(mutated)]["seq"])
    return int(mutated[len(original)]["seq"])


FIELDS = [
    "seq",
    "at",
    "actor",
    "action",
    "target",
    "details",
    "policy_version",
    "prev_hash",
    "hash",
]


def _other(value: Any, draw: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + draw(st.sampled_from([-2, -1, 1, 2, 1000]))
    if isinstance(value, str):
        if len(value) == 64:
            return ("0" if value[0] != "0" else "1") + value[1:]
        return value + draw(st.sampled_from(["x", " ", "\u200b"]))
    if isinstance(value, dict):
        changed = dict(value)
        changed[draw(st.sampled_from(["i", "purpose", "extra"]))] = "forged"
        return changed
    if isinstance(value, list):
        return [*value[:-1], "00" * 32] if value else ["00" * 32]
    return "forged"


@st.composite
def tampered(draw: Any, original: list[dict[str, Any]], with_proofs: bool) -> list[dict[str, Any]]:
    entries = copy.deepcopy(original)
    n = len(entries)
    kind = draw(
        st.sampled_from(
            ["edit", "edit", "smart_edit", "delete", "swap", "insert", "duplicate", "truncate"]
        )
    )
    i = draw(st.integers(0, n - 1))
    if kind == "edit":
        fields = FIELDS + (["proof"] if with_proofs else [])
        name = draw(st.sampled_from(fields))
        entries[i][name] = _other(entries[i][name], draw)
    elif kind == "smart_edit":  # content changed and its own hash recomputed to match
        entries[i]["details"] = {**entries[i]["details"], "i": -1}
        e = entries[i]
        entry = AuditEntry(
            e["seq"],
            datetime.fromisoformat(e["at"]),
            e["actor"],
            e["action"],
            e["target"],
            e["details"],
            e["policy_version"],
            e["prev_hash"],
            "",
        )
        from consentry.audit.chain import link_hash

        entries[i]["hash"] = link_hash(e["prev_hash"], entry.body())
    elif kind == "delete":
        del entries[i]
    elif kind == "swap":
        j = draw(st.integers(0, n - 1).filter(lambda j: j != i))
        entries[i], entries[j] = entries[j], entries[i]
    elif kind == "insert":  # a forged entry
        forged = copy.deepcopy(entries[draw(st.integers(0, n - 1))])
        forged["action"] = "consent.withdrawn"
        entries.insert(i, forged)
    elif kind == "duplicate":  # an exact copy of an honest line
        entries.insert(i, copy.deepcopy(entries[draw(st.integers(0, n - 1))]))
    else:
        del entries[draw(st.integers(1, n - 1)) :]
    if entries == original:
        from hypothesis import assume

        assume(False)
    return entries


@pytest.mark.parametrize("export", [FULL, SLICE], ids=["whole-log", "slice"])
def test_honest_exports_verify(export: list[dict[str, Any]]) -> None:
    report = verify_export(encode(export), KEYS)
    assert report.status == "verified", report.summary()
    assert report.entries == len(export) - 1


@settings(max_examples=700, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_tampered_whole_log_export_is_caught(data: st.DataObject) -> None:
    mutated = data.draw(tampered(FULL[1:], with_proofs=False))
    report = verify_export(encode([FULL[0], *mutated]), KEYS)
    assert report.status == "broken", report.summary()
    assert report.broken is not None
    expected = first_bad_seq(FULL[1:], mutated)
    if report.broken.seq != expected:
        # only a rehashed edit of the last entry is invisible to links: the root catches it
        assert report.broken.seq == SIZE and "Merkle root" in report.broken.expected
        assert expected == SIZE


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_tampered_slice_export_is_caught(data: st.DataObject) -> None:
    mutated = data.draw(tampered(SLICE[1:], with_proofs=True))
    report = verify_export(encode([SLICE[0], *mutated]), KEYS)
    assert report.status == "broken", report.summary()
    assert report.broken is not None and report.broken.seq == first_bad_seq(SLICE[1:], mutated)


def as_rows(entries: list[dict[str, Any]]) -> list[AuditEntry]:
    """What `SELECT ... ORDER BY seq` returns from a table whose seq is the primary key."""
    rows = {}
    for e in entries:
        rows[e["seq"]] = AuditEntry(
            e["seq"],
            datetime.fromisoformat(e["at"]) if isinstance(e["at"], str) else T0,
            str(e["actor"]),
            str(e["action"]),
            str(e["target"]),
            e["details"] if isinstance(e["details"], dict) else {},
            str(e["policy_version"]),
            str(e["prev_hash"]),
            str(e["hash"]),
        )
    return [rows[k] for k in sorted(rows)]


def raw(entries: list[AuditEntry]) -> list[tuple[Any, ...]]:
    """Entries as SQLite stores them: time as str(datetime), details as canonical JSON text."""
    return [
        (
            e.seq,
            str(e.at),
            e.actor,
            e.action,
            e.target,
            canonical_json(e.details).decode(),
            e.policy_version,
            e.prev_hash,
            e.hash,
        )
        for e in entries
    ]


def test_raw_rows_verify_and_odd_spellings_fall_back_to_parsing() -> None:
    rows = raw(LOG)
    verifier = LogVerifier([CHECKPOINT], KEYS)
    assert verifier.feed_rows(rows) and verifier.finish().status == "verified"
    spelled = list(rows)
    for i in (0, 5, 77):  # a legacy spelling of the same details, and a time with microseconds
        spelled[i] = (*rows[i][:5], json.dumps(LOG[i].details), *rows[i][6:])
    spelled[9] = (rows[9][0], LOG[9].at, *rows[9][2:])
    verifier = LogVerifier([CHECKPOINT], KEYS)
    assert verifier.feed_rows(spelled) and verifier.finish().status == "verified"
    assert verifier.report.entries == SIZE
    garbage = list(rows)
    garbage[33] = (*rows[33][:5], "{not json", *rows[33][6:])
    verifier = LogVerifier([CHECKPOINT], KEYS)
    assert not verifier.feed_rows(garbage)
    assert verifier.report.broken is not None and verifier.report.broken.seq == 34


@st.composite
def tampered_rows(draw: Any) -> tuple[list[dict[str, Any]], int]:
    """Database edits: a column changed, a row deleted, two rows' contents swapped, a forged
    row inserted (later seqs shifted). Returns the rows and the first bad seq."""
    rows = copy.deepcopy(FULL[1:])
    n = len(rows)
    i = draw(st.integers(0, n - 1))
    kind = draw(st.sampled_from(["edit", "delete", "swap", "insert"]))
    if kind == "edit":
        name = draw(st.sampled_from([f for f in FIELDS if f != "seq"]))
        rows[i][name] = _other(rows[i][name], draw)
        if name == "at":
            from hypothesis import assume

            assume(isinstance(rows[i]["at"], str) and _parses(rows[i]["at"]))
        bad = i + 1
    elif kind == "delete":
        del rows[i]
        bad = i + 1
    elif kind == "swap":
        j = draw(st.integers(i + 1, n - 1)) if i < n - 1 else 0
        if j == 0:
            i, j = 0, n - 1
        keep_i, keep_j = rows[i]["seq"], rows[j]["seq"]
        rows[i], rows[j] = {**rows[j], "seq": keep_i}, {**rows[i], "seq": keep_j}
        bad = i + 1
    else:
        forged = {**rows[i], "action": "consent.withdrawn"}
        for r in rows[i:]:
            r["seq"] += 1
        rows.insert(i, forged)
        bad = i + 1
    return rows, bad


def _parses(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=tampered_rows())
def test_every_tampered_database_is_caught(case: tuple[list[dict[str, Any]], int]) -> None:
    rows, bad = case
    verifier = LogVerifier([CHECKPOINT], KEYS)
    verifier.feed_rows(raw(as_rows(rows)))  # as `consentry audit verify` reads SQLite rows
    report = verifier.report if verifier.report.broken else verifier.finish(head_seq=len(rows))
    assert report.status == "broken", report.summary()
    assert report.broken is not None and report.broken.seq == bad, report.summary()


def test_a_tail_past_the_last_checkpoint_is_unverifiable_not_fine() -> None:
    early = sign_checkpoint(KEY, 100, merkle.root(LEAVES[:100]).hex(), LOG[99].hash, T0)
    verifier = LogVerifier([early], KEYS)
    verifier.feed(LOG[:110])  # 10 entries gone from the end, past the checkpoint
    report = verifier.finish()
    assert report.status == "unverifiable" and report.unverified == (101, 110)
    assert report.exit_code == 3


def test_forged_checkpoints_and_headers_are_refused() -> None:
    other = SigningKey(bytes(32))
    forged = sign_checkpoint(other, SIZE, CHECKPOINT.root, CHECKPOINT.head_hash, T0)
    verifier = LogVerifier([forged], KEYS)
    verifier.feed(LOG)
    assert verifier.finish().status == "broken"
    header = dict(FULL[0])
    header["seqs"] = [[1, SIZE - 1]]  # claim one entry fewer: the signature no longer holds
    report = verify_export(encode([header, *FULL[1:-1]]), KEYS)
    assert report.status == "broken" and "signature" in report.summary()
    header = dict(FULL[0])
    header["checkpoint"] = {**header["checkpoint"], "root": "0" * 64}
    assert verify_export(encode([header, *FULL[1:]]), KEYS).status == "broken"
    assert verify_export(encode(FULL), KeyRing([other.public])).status == "broken"
    assert verify_export([b"not json"], KEYS).status == "broken"
    assert verify_export([], KEYS).status == "broken"


def test_json_roundtrip_of_lines_is_what_is_verified() -> None:
    text = b"\n".join(encode(SLICE)) + b"\n"
    report = verify_export(text.splitlines(keepends=True), KEYS)
    assert report.status == "verified", report.summary()
    assert json.loads(text.splitlines()[0])["count"] == len(SLICE) - 1
