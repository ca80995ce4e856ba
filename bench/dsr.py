"""Data-subject requests: export of a customer with many events, and bulk erasure.

    python bench/dsr.py                                # both, SQLite and PostgreSQL
    python bench/dsr.py --backend sqlite --events 10000 --customers 10000 --runs 5

Runs in process through the same services the API and the CLI call (no HTTP): a fresh SQLite
file or PostgreSQL schema, loaded through the service (customers with identities and a consent;
events in batches of 1,000), then:
- export: file a verified access request and fulfil it (read everything, ask the plugins, build
  and seal the bundle, store it, audit, complete), then download it; `--runs` times, median.
  Target (issue 4): under 1 s for 10,000 events on SQLite.
- bulk erasure: `dsr.erase_many` over every customer (plugins, key destruction, rows, tombstone,
  certificate, audit), the same call `consentry erase` makes; customers per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from consentry.boot import close_core, open_core
from consentry.core.principals import SYSTEM
from consentry.core.runtime import Core
from consentry.customers import records as customers
from consentry.dsr import export as dsr_export
from consentry.dsr import workflow as dsr
from consentry.dsr.requests import RequestType
from consentry.host.manager import first_party
from consentry.ledger import events
from consentry.settings import Settings

POSTGRES_URL = os.environ.get(
    "CONSENTRY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


async def open_bench_core(backend: str, directory: Path) -> tuple[Core, str | None]:
    schema = None
    url = f"sqlite:///{directory / 'bench.sqlite'}"
    if backend == "postgres":
        schema = "bench_" + uuid.uuid4().hex[:10]
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.close()
        url = f"{POSTGRES_URL}?search_path={schema}"
    settings = Settings(
        data_dir=directory / "data",
        database_url=url,
        log_level="warning",
        plugins=",".join(first_party()),
    )
    return await open_core(settings), schema


async def drop(schema: str | None) -> None:
    if schema is None:
        return
    conn = await asyncpg.connect(POSTGRES_URL)
    for name in (schema, f"{schema}_keys"):
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    await conn.close()


async def make_customers(core: Core, count: int, prefix: str) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    for at in range(0, count, 200):
        await asyncio.gather(
            *(
                customers.upsert(
                    core,
                    customers.CustomerUpsert(
                        ext,
                        region="EU",
                        identities={"email": f"{ext}@example.com"},
                        attributes={"first_name": "Ada", "plan": "pro"},
                    ),
                    SYSTEM,
                )
                for ext in ids[at : at + 200]
            )
        )
    return ids


async def bench_export(core: Core, n_events: int, runs: int) -> dict[str, Any]:
    [ext] = await make_customers(core, 1, "export")
    for at in range(0, n_events, events.MAX_BATCH):
        batch = [
            events.EventIn(ext, "feature_used", properties={"feature": "reports", "n": i})
            for i in range(at, min(at + events.MAX_BATCH, n_events))
        ]
        await events.ingest(core, batch, SYSTEM)
    subject_id, region = await customers.resolve(core, ext)
    fulfil, download, sizes = [], [], []
    for _ in range(runs):
        request = await dsr.file_request(
            core, subject_id, region, RequestType.ACCESS, SYSTEM, verified_by="bench"
        )
        started = time.perf_counter()
        done = await dsr.fulfil(core, request.id, SYSTEM)
        fulfil.append(time.perf_counter() - started)
        started = time.perf_counter()
        bundle = await dsr_export.download(core, done.id, SYSTEM.actor)
        download.append(time.perf_counter() - started)
        sizes.append(len(bundle.content))
    return {
        "fulfil_median_s": statistics.median(fulfil),
        "fulfil_runs_s": [round(x, 3) for x in fulfil],
        "download_median_s": statistics.median(download),
        "bundle_bytes": sizes[0],
    }


async def bench_erasure(core: Core, n_customers: int, concurrency: int) -> dict[str, Any]:
    started = time.perf_counter()
    ids = await make_customers(core, n_customers, "erase")
    load = time.perf_counter() - started
    started = time.perf_counter()
    outcomes = await dsr.erase_many(core, ids, SYSTEM, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    erased = sum(o.status == "erased" for o in outcomes)
    assert erased == n_customers, {o.status for o in outcomes}
    return {
        "customers": n_customers,
        "seconds": elapsed,
        "per_second": n_customers / elapsed,
        "load_seconds": load,
    }


async def run(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            core, schema = await open_bench_core(backend, Path(tmp))
            try:
                if not args.skip_export:
                    result = await bench_export(core, args.events, args.runs)
                    print(
                        f"{backend}: export of a customer with {args.events:,} events:"
                        f" fulfil median {result['fulfil_median_s'] * 1000:,.0f} ms"
                        f" (runs {result['fulfil_runs_s']}), download"
                        f" {result['download_median_s'] * 1000:,.0f} ms,"
                        f" bundle {result['bundle_bytes']:,} bytes"
                        + ("  [target < 1 s on SQLite]" if backend == "sqlite" else ""),
                        flush=True,
                    )
                if not args.skip_erasure:
                    result = await bench_erasure(core, args.customers, args.concurrency)
                    print(
                        f"{backend}: bulk erasure of {result['customers']:,} customers:"
                        f" {result['seconds']:,.1f} s ({result['per_second']:,.0f}/s;"
                        f" loading them took {result['load_seconds']:,.1f} s)",
                        flush=True,
                    )
            finally:
                await close_core(core)
                await drop(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-erasure", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
