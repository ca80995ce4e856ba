"""Checkpoints, the stored Merkle tree, proofs, verification of the database, key rotation: on
both engines, against the in-memory reference in `audit.merkle`."""

from __future__ import annotations

import base64

import pytest

from consentry.audit import merkle
from consentry.audit.checkpoints import check_signature
from consentry.audit.verify import ROW_COLUMNS, LogVerifier, Report
from consentry.audit_log import tree as audit_tree
from consentry.audit_log.verify import verify_database
from consentry.boot import close_core, open_core
from consentry.core.runtime import Core
from consentry.crypto.signing import KeyRing, SigningKey
from consentry.settings import Settings
from consentry.storage.writer import WriteTx


async def append_entries(core: Core, n: int, *, per_job: int = 25) -> None:
    """n audit entries through the writer, as real changes make them."""

    def job_for(first: int, count: int):
        async def job(tx: WriteTx) -> None:
            for i in range(first, first + count):
                tx.audit("key:test", "test.appended", f"thing:{i}", i=i, purpose="analytics")

        return job

    for first in range(0, n, per_job):
        await core.writer.submit(job_for(first, min(per_job, n - first)))


async def leaves(core: Core) -> list[bytes]:
    rows = await core.db.fetch("SELECT hash FROM audit_log ORDER BY seq")
    return [merkle.leaf_hash(bytes.fromhex(r["hash"])) for r in rows]


async def verify_db(core: Core) -> LogVerifier:
    verifier = LogVerifier(
        await audit_tree.all_checkpoints(core.db), await audit_tree.key_ring(core.db)
    )
    rows = await core.db.fetch_tuples(f"SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq")
    verifier.feed_rows(rows)
    return verifier


async def test_checkpoints_sign_the_merkle_root_of_the_log(core: Core) -> None:
    await append_entries(core, 700)
    cp = await core.checkpointer.checkpoint()
    all_leaves = await leaves(core)
    assert cp.tree_size == len(all_leaves) == 700
    assert cp.root == merkle.root(all_leaves).hex()
    last = await core.db.fetchrow("SELECT hash FROM audit_log WHERE seq = 700")
    assert last is not None and cp.head_hash == last["hash"]
    assert check_signature(cp, await audit_tree.key_ring(core.db)) is None
    # asking again with nothing new returns the same checkpoint, not a new signature
    assert await core.checkpointer.checkpoint() == cp
    # nodes of 256 leaves and up were stored: 700 leaves -> two of level 8, one of level 9
    rows = await core.db.fetch("SELECT key FROM audit_nodes ORDER BY key")
    assert sorted((int(r["key"]) >> 48, int(r["key"]) & 0xFFFF) for r in rows) == [
        (8, 0),
        (8, 1),
        (9, 0),
    ]


async def test_stored_tree_answers_every_inclusion_and_consistency_proof(core: Core) -> None:
    await append_entries(core, 300)
    first = await core.checkpointer.checkpoint()
    await append_entries(core, 333)
    second = await core.checkpointer.checkpoint()
    all_leaves = await leaves(core)
    root = bytes.fromhex(second.root)
    for index in [0, 1, 255, 256, 299, 300, 511, 512, 600, 632]:
        proof = await core.checkpointer.tree.inclusion_proof(index, second.tree_size)
        assert proof == merkle.inclusion_proof(index, all_leaves)
        assert merkle.verify_inclusion(all_leaves[index], index, second.tree_size, proof, root)
    proof = await core.checkpointer.tree.consistency_proof(first.tree_size, second.tree_size)
    assert proof == merkle.consistency_proof(first.tree_size, all_leaves)
    assert merkle.verify_consistency(
        first.tree_size, second.tree_size, bytes.fromhex(first.root), root, proof
    )


async def test_the_tree_resumes_after_a_restart(settings: Settings) -> None:
    core = await open_core(settings)
    try:
        await append_entries(core, 520)
        before = await core.checkpointer.checkpoint()
    finally:
        await close_core(core)
    core = await open_core(settings)
    try:
        await append_entries(core, 90)
        after = await core.checkpointer.checkpoint()
        all_leaves = await leaves(core)
        assert after.tree_size == 610 and after.root == merkle.root(all_leaves).hex()
        proof = await core.checkpointer.tree.consistency_proof(before.tree_size, after.tree_size)
        assert merkle.verify_consistency(
            520, 610, bytes.fromhex(before.root), bytes.fromhex(after.root), proof
        )
        report = (await verify_db(core)).finish()
        assert report.status == "verified", report.summary()
    finally:
        await close_core(core)


async def test_a_clean_shutdown_signs_the_tail(settings: Settings) -> None:
    core = await open_core(settings)
    await append_entries(core, 40)
    await close_core(core)
    core = await open_core(settings)
    try:
        latest = (await audit_tree.checkpoints(core.db, before=None, limit=1))[0]
        assert latest.tree_size == 40
    finally:
        await close_core(core)


async def test_database_tampering_is_named_by_sequence_number(core: Core) -> None:
    await append_entries(core, 60)
    await core.checkpointer.checkpoint()
    assert (await verify_db(core)).finish().status == "verified"
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE audit_log SET target = 'thing:forged' WHERE seq = 17")
    report = (await verify_db(core)).report
    assert report.broken is not None and report.broken.seq == 17
    assert "hash" in report.broken.expected


async def test_truncation_below_a_checkpoint_breaks_and_above_it_is_unverifiable(
    core: Core,
) -> None:
    await append_entries(core, 50)
    await core.checkpointer.checkpoint()
    await core.checkpointer.stop()  # no more automatic checkpoints: a tail stays unsigned
    await append_entries(core, 10)
    verifier = await verify_db(core)
    report = verifier.finish(head_seq=60)
    assert report.status == "unverifiable" and report.unverified == (51, 60)
    assert "51..60" in report.summary() and report.exit_code == 3
    async with core.db.transaction() as tx:
        await tx.execute("DELETE FROM audit_log WHERE seq > 45")
    report = (await verify_db(core)).finish(head_seq=60)
    assert report.status == "broken" and report.broken is not None
    assert report.broken.seq == 46


async def test_the_checkpointer_refuses_to_sign_a_broken_chain(core: Core) -> None:
    await append_entries(core, 30)
    await core.checkpointer.checkpoint()
    await append_entries(core, 5)
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE audit_log SET action = 'forged' WHERE seq = 33")
    with pytest.raises(RuntimeError, match="seq 33"):
        await core.checkpointer.checkpoint()
    assert core.checkpointer.latest is not None and core.checkpointer.latest.tree_size == 30


async def test_rotation_keeps_old_checkpoints_verifiable(core: Core, settings: Settings) -> None:
    await append_entries(core, 20)
    old = await core.checkpointer.checkpoint()
    old_key = core.signing_key.key_id
    new = await audit_tree.rotate_key(core.checkpointer, settings, "key:admin")
    assert new.key_id != old_key and core.signing_key.key_id == new.key_id
    await append_entries(core, 5)
    latest = await core.checkpointer.checkpoint()
    assert latest.key_id == new.key_id and old.key_id == old_key
    ring = await audit_tree.key_ring(core.db)
    assert check_signature(old, ring) is None and check_signature(latest, ring) is None
    assert check_signature(old, KeyRing([new.public])) is not None  # the new key alone won't do
    published = {k.key_id: retired for k, _, retired in await audit_tree.published_keys(core.db)}
    assert published[new.key_id] is None and published[old_key] is not None
    rotated = await core.db.fetch("SELECT * FROM audit_log WHERE action = 'signing_key.rotated'")
    assert len(rotated) == 1 and old_key in rotated[0]["details"]
    # the old private key is gone from disk: only the new seed is stored
    seed = (settings.data_dir / "secrets" / "signing_key.key").read_text().strip()
    assert SigningKey(base64.b64decode(seed)).key_id == new.key_id
    report = (await verify_db(core)).finish()
    assert report.status == "verified", report.summary()


async def parallel_report(core: Core, settings: Settings, workers: int = 2) -> Report:
    head = await core.db.fetchrow("SELECT seq FROM audit_head WHERE id = 1")
    assert head is not None
    return await verify_database(
        core.db,
        settings.database_url,
        await audit_tree.all_checkpoints(core.db),
        await audit_tree.key_ring(core.db),
        head_seq=int(head["seq"]),
        workers=workers,
        range_size=400,
        parallel_from=0,
    )


async def test_parallel_verification_matches_the_exact_verifier(
    core: Core, settings: Settings
) -> None:
    """Worker processes verify ranges; the parent folds the tree and checks every checkpoint
    inside the ranges; anything odd is re-verified row by row and named exactly."""
    for _ in range(3):
        await append_entries(core, 700)
        await core.checkpointer.checkpoint()
    report = await parallel_report(core, settings)
    assert report.status == "verified" and report.entries == 2100, report.summary()
    assert report.checkpoints >= 3 and report.rechecked == 0  # the workers did the hashing
    # a legacy spelling of the details in a range: the exact verifier accepts it
    async with core.db.transaction() as tx:
        await tx.execute(
            "UPDATE audit_log SET details = ? WHERE seq = 555", '{"i": 554, "purpose": "analytics"}'
        )
    report = await parallel_report(core, settings)
    assert report.status == "verified" and report.rechecked == 1
    async with core.db.transaction() as tx:  # seq 801 opens the third range
        await tx.execute("UPDATE audit_log SET actor = 'key:forged' WHERE seq = 801")
    report = await parallel_report(core, settings)
    assert report.broken is not None and report.broken.seq == 801, report.summary()
    async with core.db.transaction() as tx:
        await tx.execute("UPDATE audit_log SET actor = 'key:test' WHERE seq = 801")
        await tx.execute("DELETE FROM audit_log WHERE seq = 1700")
    report = await parallel_report(core, settings)
    assert report.broken is not None and report.broken.seq == 1700, report.summary()
