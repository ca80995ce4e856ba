"""Audit log figures: appends per second, checkpoint build, verification speed, and the machine's
raw SHA-256 rate as the physical limit.

    python bench/audit.py --entries 1000000 --backend both --runs 3

Appends go through the real writer (group commit, durable) from 16 concurrent tasks, one audit
entry per job, as API writes make them. Verification builds a log of `--entries` real entries
(hash-chained by the service's own code), inserts it, lets the checkpointer sign it (which
re-checks every entry), then times `consentry audit verify` on the database and on a JSONL
export. Results print as medians with their targets; JSON goes to bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from consentry.audit.chain import GENESIS_HASH, AuditDraft, chain, purposes_of
from consentry.boot import close_core, open_core
from consentry.crypto.canonical import canonical_json
from consentry.settings import Settings
from consentry.storage.writer import WriteTx

PG = os.environ.get("CONSENTRY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS = Path(__file__).parent / "results"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sha256_rates() -> dict[str, float]:
    """Raw hashlib: bytes per second on 1 MiB blocks, and hashes per second of one entry's size."""
    block = os.urandom(1 << 20)
    start = time.perf_counter()
    for _ in range(256):
        hashlib.sha256(block).digest()
    gbps = 256 * len(block) / (time.perf_counter() - start) / 1e9
    entry = os.urandom(400)
    n = 1_000_000
    start = time.perf_counter()
    for _ in range(n):
        hashlib.sha256(entry).digest()
    per_entry = n / (time.perf_counter() - start)
    return {"sha256_gb_per_s": gbps, "sha256_400B_per_s": per_entry}


def drafts(i: int, n: int) -> list[AuditDraft]:
    return [
        AuditDraft(
            "key:3f9a1c2b4d5e6f70",
            ("consent.recorded", "customer.updated", "events.read")[k % 3],
            f"subject:{uuid.UUID(int=k * 7919 + 1)}",
            {
                "source": "api",
                "decisions": [
                    {
                        "purpose": "marketing_email",
                        "channel": "email",
                        "decision": "granted",
                        "record": str(uuid.UUID(int=k)),
                    }
                ],
            },
        )
        for k in range(i, i + n)
    ]


async def fill(settings: Settings, entries: int) -> float:
    """Insert `entries` chained entries straight into audit_log; returns seconds spent hashing."""
    core = await open_core(settings)
    await core.checkpointer.stop()
    head, seq, hashing = GENESIS_HASH, 0, 0.0
    at = datetime(2026, 11, 1, tzinfo=UTC)
    batch = 10_000
    try:
        for start in range(0, entries, batch):
            t = time.perf_counter()
            made = []
            for j in range(start, min(start + batch, entries), 100):
                part = chain(
                    drafts(j, min(100, entries - j)),
                    head_seq=seq,
                    head_hash=head,
                    at=at + timedelta(milliseconds=j),
                    policy_version="sha256:" + "a" * 64,
                )
                made.extend(part)
                head, seq = part[-1].hash, part[-1].seq
            hashing += time.perf_counter() - t
            async with core.db.transaction() as tx:
                await tx.executemany(
                    "INSERT INTO audit_log (seq, at, actor, action, target, details,"
                    " policy_version, prev_hash, hash, purposes) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            e.seq,
                            e.at,
                            e.actor,
                            e.action,
                            e.target,
                            canonical_json(e.details).decode(),
                            e.policy_version,
                            e.prev_hash,
                            e.hash,
                            purposes_of(e.details),
                        )
                        for e in made
                    ],
                )
                await tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, head)
            if start and start % 200_000 == 0:
                log(f"    {start:,} entries inserted")
    finally:
        await close_core(core)  # not restarted: no checkpoint is signed here
    return hashing


async def appends(settings: Settings, seconds: float) -> float:
    core = await open_core(settings)
    stop = time.perf_counter() + seconds
    done = 0

    async def job(tx: WriteTx) -> None:
        tx.audit("key:bench", "consent.recorded", "subject:bench", purpose="analytics")

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await core.writer.submit(job)
            done += 1

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(16)))
        return done / (time.perf_counter() - start)
    finally:
        await close_core(core)


async def sign(settings: Settings) -> float:
    core = await open_core(settings)
    try:
        start = time.perf_counter()
        cp = await core.checkpointer.checkpoint()
        took = time.perf_counter() - start
        log(f"    checkpoint over {cp.tree_size:,} entries in {took:.1f} s")
        return took
    finally:
        await close_core(core)


def cli(settings: Settings, *args: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_DATABASE_URL": settings.database_url,
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "consentry.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"consentry {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return took, done.stdout


async def backend_figures(name: str, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    schema = None
    if name == "postgres":
        schema = "bench_" + uuid.uuid4().hex[:8]
        conn = await asyncpg.connect(PG)
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.close()
        url = f"{PG}?search_path={schema}"
    else:
        url = f"sqlite:///{tmp / name / 'consentry.sqlite'}"
    settings = Settings(data_dir=tmp / name / "data", database_url=url)
    figures: dict[str, list[float]] = {
        "appends_per_s": [],
        "verify_db_per_s": [],
        "verify_export_per_s": [],
    }
    try:
        for _ in range(opts.runs):
            figures["appends_per_s"].append(await appends(settings, opts.seconds))
        log(f"  {name}: appends {statistics.median(figures['appends_per_s']):,.0f}/s")
        # a fresh database for the big log
        if schema:
            conn = await asyncpg.connect(PG)
            await conn.execute(f"DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}")
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE")
            await conn.close()
        else:
            for f in (tmp / name).glob("consentry.sqlite*"):
                f.unlink()
        settings = Settings(data_dir=tmp / name / "data2", database_url=url)
        log(f"  {name}: building {opts.entries:,} entries")
        hashing = await fill(settings, opts.entries)
        sign_seconds = await sign(settings)
        for _ in range(opts.runs):
            took, out = cli(settings, "audit", "verify", "--quiet")
            assert out.startswith("verified"), out
            figures["verify_db_per_s"].append(opts.entries / took)
        export = tmp / name / "export.jsonl"
        cli(settings, "audit", "keys", "--output", str(tmp / name / "keys.json"))
        cli(settings, "audit", "export", "--output", str(export))
        for _ in range(opts.runs):
            took, out = cli(
                settings,
                "audit",
                "verify",
                str(export),
                "--public-key",
                str(tmp / name / "keys.json"),
                "--quiet",
            )
            assert out.startswith("verified"), out
            figures["verify_export_per_s"].append(opts.entries / took)
        result = {k: statistics.median(v) for k, v in figures.items()}
        result["runs"] = figures
        result["chain_build_per_s"] = opts.entries / hashing
        result["checkpoint_build_s"] = sign_seconds
        return result
    finally:
        if schema:
            conn = await asyncpg.connect(PG)
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE")
            await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per append run")
    opts = parser.parse_args()
    backends = ["sqlite", "postgres"] if opts.backend == "both" else [opts.backend]
    results: dict[str, Any] = {"entries": opts.entries, "machine": sha256_rates()}
    m = results["machine"]
    log(
        f"SHA-256: {m['sha256_gb_per_s']:.2f} GB/s, {m['sha256_400B_per_s']:,.0f} hashes/s of 400 B"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in backends:
            results[name] = await backend_figures(name, opts, Path(tmp))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(results, indent=2))
    print(f"\naudit figures ({opts.entries:,} entries, medians of {opts.runs})")
    print(
        f"  raw SHA-256: {m['sha256_gb_per_s']:.2f} GB/s; {m['sha256_400B_per_s']:,.0f}/s of 400 B"
    )
    for name in backends:
        r = results[name]
        ten_million = 10_000_000 / r["verify_db_per_s"]
        print(f"  {name}: appends {r['appends_per_s']:,.0f}/s (one entry per job, c=16)")
        print(
            f"  {name}: verify database {r['verify_db_per_s']:,.0f} entries/s"
            f" (target 500,000; 10M in ~{ten_million:.0f} s, target < 60 s)"
        )
        print(f"  {name}: verify export {r['verify_export_per_s']:,.0f} entries/s")
        print(
            f"  {name}: checkpoint over the whole log {r['checkpoint_build_s']:.1f} s;"
            f" chain build {r['chain_build_per_s']:,.0f} entries/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
