"""Email verification: do answers for a customer's address and for nobody's take as long?

    python bench/verification.py                       # SQLite and PostgreSQL, 200 of each
    python bench/verification.py --backend sqlite --rounds 500

In process, over HTTP (httpx on the ASGI app, no network), with a real SMTP server (aiosmtpd in
its own process) so that codes for customers really go out, in the background, as in
production. Each round asks a code for a customer's address and for an address nobody has, then
tries a wrong code for each, interleaved so the machine's load falls on both alike; the limits
are raised so that none of them answers 429. Prints medians and 90th percentiles per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.host.manager import first_party
from consentry.settings import Settings

POSTGRES_URL = os.environ.get(
    "CONSENTRY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PUBLIC = {"Authorization": ""}
KINDS = ("code, customer", "code, nobody", "wrong code, customer", "wrong code, nobody")


def smtp_server() -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    sink = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    process = subprocess.Popen([*sink, "-l", f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the SMTP server did not start")


async def run(backend: str, rounds: int, directory: Path) -> dict[str, list[float]]:
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
        rate_limits=False,
        plugins=",".join(first_party()),
        verification_codes_per_client_per_hour=10 * rounds,
        verification_failures_per_client_per_day=10 * rounds,
    )
    core = await open_core(settings)
    try:
        key = await bootstrap_admin_key(core)
        transport = httpx.ASGITransport(app=create_app(settings, core=core))
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            return await measure(client, rounds)
    finally:
        await close_core(core)  # waits for the emails still on their way
        if schema is not None:
            conn = await asyncpg.connect(POSTGRES_URL)
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema}_keys CASCADE")
            await conn.close()


async def measure(client: httpx.AsyncClient, rounds: int) -> dict[str, list[float]]:
    for i in range(rounds):
        body = {"identities": {"email": f"known{i}@bench.example"}}
        r = await client.put(f"/v1/customers/bench-{i}", json=body)
        assert r.status_code == 201, r.text
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for i in range(rounds):
        for who, email in (("customer", f"known{i}@bench.example"), ("nobody", f"n{i}@b.example")):
            times[f"code, {who}"].append(
                await timed(client, "/v1/verifications", {"email": email}, 202)
            )
            wrong = {"email": email, "code": "0123456789"}
            times[f"wrong code, {who}"].append(
                await timed(client, "/v1/verifications/confirm", wrong, 401)
            )
    return times


async def timed(client: httpx.AsyncClient, path: str, body: dict[str, str], status: int) -> float:
    start = time.perf_counter()
    r = await client.post(path, json=body, headers=PUBLIC)
    elapsed = time.perf_counter() - start
    assert r.status_code == status, r.text
    return elapsed


def report(backend: str, times: dict[str, list[float]]) -> None:
    for kind in KINDS:
        values = sorted(times[kind])
        median = statistics.median(values) * 1000
        p90 = values[int(len(values) * 0.9)] * 1000
        print(f"{backend:9} {kind:22} median {median:6.2f} ms   p90 {p90:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    server, port = smtp_server()
    os.environ.update(CONSENTRY_SMTP_HOST="127.0.0.1", CONSENTRY_SMTP_PORT=str(port))
    try:
        for backend in backends:
            with tempfile.TemporaryDirectory() as directory:
                report(backend, asyncio.run(run(backend, args.rounds, Path(directory))))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
