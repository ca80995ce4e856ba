"""Verifying the audit log, from the database or from an export, with nothing but public keys.

Two shapes of input, one set of rules:

- the whole log from entry 1 (the database, or an unfiltered export): every link of the hash
  chain is recomputed, the Merkle tree is rebuilt as entries stream by, and its root is compared
  with every signed checkpoint at that size;
- a slice (a filtered export): every entry's hash is recomputed, each carries an inclusion proof
  against the export's signed checkpoint, adjacent entries must link, and the export's signed
  trailer says exactly which sequence numbers it holds, so a deleted, inserted or moved line is
  named by its sequence number.

The first problem is reported as a `Break`: the sequence number, what was expected, what was
found. Entries no checkpoint covers are reported as unverifiable, never as fine.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from consentry.audit import export, merkle
from consentry.audit.chain import GENESIS_HASH, AuditEntry, Break, link_hash
from consentry.audit.checkpoints import Checkpoint, check_signature
from consentry.audit.frontier import Frontier
from consentry.audit.report import Report
from consentry.audit.stored import ROW_COLUMNS, at_text, row_entry
from consentry.crypto.signing import KeyRing

__all__ = [  # Report and the stored form are imported from here too
    "ROW_COLUMNS",
    "LogVerifier",
    "Report",
    "at_text",
    "row_entry",
    "verify_export",
]

Progress = Callable[[int], None]
_encode_body = msgspec.json.Encoder(order="sorted").encode


def _hash_of(entry: AuditEntry) -> str:
    return link_hash(entry.prev_hash, entry.body())


def _leaf(entry_hash: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(entry_hash))


def _link_break(entry: AuditEntry, digest: str, prev: str) -> Break:
    """An entry that does not link to the one before. If the entry is itself intact (its hash
    covers the prev_hash it carries), that prev_hash is what the previous entry's hash was when
    this one was written: the previous entry was altered (and its hash recomputed)."""
    if entry.seq > 1 and hmac.compare_digest(digest, entry.hash):
        return Break(
            entry.seq - 1,
            f"hash {entry.prev_hash} (entry {entry.seq} links to it)",
            f"hash {prev}",
        )
    return Break(entry.seq, f"prev_hash {prev}", f"prev_hash {entry.prev_hash}")


class LogVerifier:
    """The whole log, entry 1 onwards, streamed: chain links, Merkle roots at checkpoints."""

    def __init__(
        self, checkpoints: Iterable[Checkpoint], keys: KeyRing, report: Report | None = None
    ) -> None:
        self.report = report or Report()
        self._frontier = Frontier()
        self._prev = GENESIS_HASH
        self._covered = 0  # the largest checkpoint size whose root matched
        self._keep_from: int | None = None
        self.nodes: list[tuple[int, int, bytes]] = []  # completed subtrees, if asked to keep
        self._pending: list[Checkpoint] = []
        for cp in sorted(checkpoints, key=lambda c: c.tree_size):
            problem = check_signature(cp, keys)
            if problem:
                self.report.problems.append(problem)
            elif cp.tree_size == 0:
                self.report.checkpoints += 1
            else:
                self._pending.append(cp)

    @classmethod
    def resume(
        cls, frontier: Frontier, prev_hash: str, *, keep_from_level: int | None = None
    ) -> LogVerifier:
        """Go on from a tree already checked up to `frontier.size` (the writer side uses this
        before signing), keeping the completed subtrees of `keep_from_level` and up."""
        verifier = cls([], KeyRing())
        verifier._frontier = frontier
        verifier._prev = prev_hash
        verifier._covered = frontier.size
        verifier._keep_from = keep_from_level
        return verifier

    def feed(self, entries: Iterable[AuditEntry]) -> bool:
        """Check the next entries; False once the chain is broken (stop reading)."""
        report = self.report
        frontier = self._frontier
        prev = self._prev
        expected = frontier.size + 1
        for entry in entries:
            if entry.seq != expected:
                report.broken = Break(expected, f"seq {expected}", f"seq {entry.seq}")
                return False
            digest = _hash_of(entry)
            if entry.prev_hash != prev:
                report.broken = _link_break(entry, digest, prev)
                return False
            if not hmac.compare_digest(digest, entry.hash):
                report.broken = Break(entry.seq, f"hash {digest}", f"hash {entry.hash}")
                return False
            completed = frontier.append(_leaf(digest))
            if self._keep_from is not None:
                self.nodes.extend(n for n in completed if n[0] >= self._keep_from)
            prev = digest
            expected += 1
            report.entries += 1
            while self._pending and self._pending[0].tree_size == frontier.size:
                if not self._check(self._pending.pop(0), prev):
                    return False
        self._prev = prev
        return True

    def feed_rows(self, rows: Iterable[tuple[Any, ...]]) -> bool:
        """`feed` for raw database rows (`ROW_COLUMNS` order), without parsing them: the body
        is rebuilt around the stored details text, which the writer stores canonical. A row
        whose raw form does not hash right is parsed and checked the slow way before it is
        called broken, so a stored form that differs only in spelling is still accepted."""
        frontier = self._frontier
        push, sha256, raw_json, at_text_of = frontier.push, hashlib.sha256, msgspec.Raw, at_text
        keep = self._keep_from
        prev = self._prev
        expected = frontier.size + 1
        next_checkpoint = self._pending[0].tree_size if self._pending else -1
        done = 0
        for row in rows:
            seq, at, actor, action, target, details, policy_version, prev_hash, stored = row
            if seq != expected:
                self.report.entries += done
                self.report.broken = Break(expected, f"seq {expected}", f"seq {seq}")
                return False
            if at.__class__ is str and len(at) == 32:  # SQLite's "YYYY-MM-DD HH:MM:SS.ffffff+HH:MM"
                when = f"{at[:10]}T{at[11:]}"
            else:
                when = at_text_of(at)
            body = _encode_body(
                {
                    "action": action,
                    "actor": actor,
                    "at": when,
                    "details": raw_json(details),
                    "policy_version": policy_version,
                    "seq": seq,
                    "target": target,
                }
            )
            raw = sha256(prev_hash.encode() + b"\n" + body).digest()
            digest = raw.hex()
            if digest != stored or prev_hash != prev:
                self.report.entries += done
                done = 0
                self._prev = prev
                if not self._slow(row):
                    return False
                prev, expected = self._prev, expected + 1
                next_checkpoint = self._pending[0].tree_size if self._pending else -1
                continue
            completed = push(sha256(b"\x00" + raw).digest())
            if keep is not None and completed:
                self.nodes.extend(n for n in completed if n[0] >= keep)
            prev = digest
            expected += 1
            done += 1
            if seq == next_checkpoint:
                self.report.entries += done
                done = 0
                while self._pending and self._pending[0].tree_size == frontier.size:
                    if not self._check(self._pending.pop(0), prev):
                        return False
                next_checkpoint = self._pending[0].tree_size if self._pending else -1
        self.report.entries += done
        self._prev = prev
        return True

    def feed_digests(self, first: int, first_prev: str, digests: bytes) -> bool:
        """A range of entries whose hashes and inner links were checked elsewhere (a worker
        process), as raw chain hashes: fold them into the tree and check the checkpoints. False,
        with nothing changed, if the range does not continue this chain."""
        frontier = self._frontier
        if first != frontier.size + 1 or first_prev != self._prev or len(digests) % 32:
            return False
        push, sha256, keep = frontier.push, hashlib.sha256, self._keep_from
        next_checkpoint = self._pending[0].tree_size if self._pending else -1
        size = frontier.size
        for i in range(0, len(digests), 32):
            raw = digests[i : i + 32]
            completed = push(sha256(b"\x00" + raw).digest())
            if keep is not None and completed:
                self.nodes.extend(n for n in completed if n[0] >= keep)
            size += 1
            if size == next_checkpoint:
                while self._pending and self._pending[0].tree_size == size:
                    if not self._check(self._pending.pop(0), raw.hex()):
                        self.report.entries += size - first + 1
                        return False
                next_checkpoint = self._pending[0].tree_size if self._pending else -1
        self.report.entries += len(digests) // 32
        if digests:
            self._prev = digests[-32:].hex()
        return True

    def _slow(self, row: tuple[Any, ...]) -> bool:
        try:
            entry = row_entry(row)
        except (ValueError, TypeError):
            self.report.broken = Break(int(row[0]), "a readable entry", "unreadable fields")
            return False
        return self.feed([entry])

    def _check(self, cp: Checkpoint, head_hash: str) -> bool:
        root = self._frontier.root().hex()
        if root != cp.root:
            self.report.broken = Break(
                cp.tree_size,
                f"Merkle root {cp.root} (signed checkpoint at size {cp.tree_size})",
                f"Merkle root {root}",
            )
            return False
        if head_hash != cp.head_hash:
            self.report.broken = Break(
                cp.tree_size, f"head hash {cp.head_hash} (signed checkpoint)", f"hash {head_hash}"
            )
            return False
        self.report.checkpoints += 1
        self._covered = cp.tree_size
        return True

    def finish(self, *, head_seq: int | None = None) -> Report:
        """Close the run: a checkpoint past the end means entries are missing (truncation)."""
        report = self.report
        size = self._frontier.size
        if report.broken is None and self._pending:
            report.broken = Break(
                size + 1,
                f"seq {size + 1} (a checkpoint signs {self._pending[-1].tree_size} entries)",
                f"the log ends at seq {size}",
            )
        if report.broken is None and head_seq is not None and head_seq != size:
            report.broken = Break(
                min(head_seq, size) + 1,
                f"{head_seq} entries (the recorded audit head)",
                f"{size} entries",
            )
        if report.broken is None and size > self._covered:
            report.unverified = (self._covered + 1, size)
        return report


# -- exports -------------------------------------------------------------------------------------


def verify_export(
    lines: Iterable[bytes], keys: KeyRing, *, progress: Progress | None = None
) -> Report:
    """Verify a JSONL export (see `audit.export`) with public keys only."""
    numbered = enumerate(lines, start=1)
    report = Report()
    try:
        header = _decode(next(numbered)[1])
    except StopIteration:
        report.problems.append("the file is empty")
        return report
    except ValueError as exc:
        report.problems.append(f"line 1: {exc}")
        return report
    problem = export.check_header(header, keys) if isinstance(header, dict) else "not a header"
    if problem:
        report.problems.append(f"line 1: {problem}")
        return report
    try:
        checkpoint = Checkpoint.from_json(header["checkpoint"])
    except ValueError as exc:
        report.problems.append(f"line 1: {exc}")
        return report
    problem = check_signature(checkpoint, keys)
    if problem:
        report.problems.append(f"line 1: {problem}")
        return report
    expected = export.expand(header["seqs"])
    entries = _entries(numbered, expected, report, progress)
    if header.get("proofs"):
        return _verify_slice(entries, checkpoint, report)
    verifier = LogVerifier([checkpoint], keys, report)
    verifier.feed(e for e, _ in entries)
    if report.broken is None and not report.problems:
        verifier.finish()
    return report


def _decode(line: bytes) -> Any:
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError:
        raise ValueError("not valid JSON") from None


def _entries(
    numbered: Iterator[tuple[int, bytes]],
    expected: Iterator[int],
    report: Report,
    progress: Progress | None,
) -> Iterator[tuple[AuditEntry, list[bytes] | None]]:
    """Entries in file order, each checked against the seq the signed header says comes next."""
    for number, line in numbered:
        if not line.strip():
            continue
        want = next(expected, None)
        try:
            entry, proof = export.parse_entry(_decode(line))
        except ValueError as exc:
            seq = want if want is not None else 0
            report.broken = Break(seq, f"entry seq {seq}", f"line {number}: {exc}")
            return
        if want is None:
            report.broken = Break(
                entry.seq,
                "the end of the export (the signed header lists no more)",
                f"seq {entry.seq} at line {number}",
            )
            return
        if entry.seq != want:
            report.broken = Break(want, f"seq {want}", f"seq {entry.seq} at line {number}")
            return
        yield entry, proof
        if progress is not None and number % 100_000 == 0:
            progress(number)
    missing = next(expected, None)
    if missing is not None and report.broken is None:
        report.broken = Break(missing, f"seq {missing}", "the end of the file")


def _verify_slice(
    entries: Iterator[tuple[AuditEntry, list[bytes] | None]],
    checkpoint: Checkpoint,
    report: Report,
) -> Report:
    root = bytes.fromhex(checkpoint.root)
    previous: AuditEntry | None = None
    for entry, proof in entries:
        if entry.seq > checkpoint.tree_size:
            report.broken = Break(
                entry.seq,
                f"seq <= {checkpoint.tree_size} (the checkpoint's size)",
                f"seq {entry.seq}",
            )
            return report
        digest = _hash_of(entry)
        if not hmac.compare_digest(digest, entry.hash):
            report.broken = Break(entry.seq, f"hash {digest}", f"hash {entry.hash}")
            return report
        if proof is None or not merkle.verify_inclusion(
            _leaf(digest), entry.seq - 1, checkpoint.tree_size, proof, root
        ):
            report.broken = Break(
                entry.seq,
                f"an inclusion proof into the checkpoint at size {checkpoint.tree_size}",
                "a proof that does not verify" if proof is not None else "no proof",
            )
            return report
        adjacent = previous is not None and previous.seq + 1 == entry.seq
        if adjacent and previous is not None and entry.prev_hash != previous.hash:
            report.broken = Break(
                entry.seq, f"prev_hash {previous.hash}", f"prev_hash {entry.prev_hash}"
            )
            return report
        previous = entry
        report.entries += 1
    if report.broken is None:
        report.checkpoints = 1
    return report
