"""The service under test: spawn `consentry serve`, wait for it, seed it, measure it, stop it."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
KEY_PATTERN = re.compile(r"\bck_[0-9a-f]+_[A-Za-z0-9_\-]+")
STARTUP_DEADLINE_S = 60.0
STOP_GRACE_S = 10.0
REGIONS = ("EU", "US", "US-CA", "JP")
FLOOR_APP = Path(__file__).resolve().parent / "floor_app.py"


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # "sqlite" | "postgres"
    database_url: str  # empty for SQLite (a file in the data dir)
    schema: str  # fresh PostgreSQL schema for this run ("" for SQLite)


@dataclass(frozen=True, slots=True)
class Service:
    pid: int
    base_url: str
    key: str
    startup_s: float
    log_path: Path


def customer_id(index: int) -> str:
    """Must match the `bench-%06d` ids that the wrk scripts pick from."""
    return f"bench-{index:06d}"


def pin(cpu: int, nice: int = 0) -> list[str]:
    """`taskset -c CPU` when there is taskset and more than one core; `nice -n N` if asked."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    if shutil.which("taskset") and (os.cpu_count() or 1) > cpu:
        prefix += ["taskset", "-c", str(cpu)]
    return prefix


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_backend(name: str) -> Backend:
    if name == "sqlite":
        return Backend("sqlite", "", "")
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    return Backend("postgres", f"{PG_URL}?search_path={schema}", schema)


def _consentry_executable() -> str:
    beside = Path(sys.executable).with_name("consentry")
    return str(beside) if beside.exists() else "consentry"


def _environment(backend: Backend, data_dir: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CONSENTRY_DATA_DIR=str(data_dir),
        CONSENTRY_DATABASE_URL=backend.database_url,
        CONSENTRY_PORT=str(port),
        CONSENTRY_HOST="127.0.0.1",
        CONSENTRY_RATE_LIMITS="off",
        CONSENTRY_LOG_LEVEL="warning",
    )
    return env


def _health_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _log_tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, path: str, started: float, log: Path
) -> float:
    """Seconds from spawn to the first 200 on `path`."""
    while time.perf_counter() - started < STARTUP_DEADLINE_S:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{_log_tail(log)}")
        if _health_ok(port, path):
            return time.perf_counter() - started
        time.sleep(0.005)
    raise RuntimeError(f"server not ready after {STARTUP_DEADLINE_S:.0f} s:\n{_log_tail(log)}")


def _admin_key(log: Path) -> str:
    match = KEY_PATTERN.search(log.read_text(errors="replace"))
    if match is None:
        raise RuntimeError(f"no bootstrap admin key in the server output:\n{_log_tail(log)}")
    return match.group(0)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_GRACE_S)


@contextmanager
def _spawned(
    command: list[str], env: dict[str, str], log: Path, port: int, ready_path: str
) -> Iterator[tuple[int, float]]:
    """Run `command` with output to `log`; yields (pid, seconds to first 200); always stopped."""
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield proc.pid, _wait_ready(proc, port, ready_path, started, log)
    finally:
        _stop(proc)


@contextmanager
def running_service(
    backend: Backend, workdir: Path, cpu: int = 0, nice: int = 0
) -> Iterator[Service]:
    """A fresh `consentry serve` pinned to `cpu`; always stopped on exit."""
    port = free_port()
    log = workdir / "server.log"
    command = [*pin(cpu, nice), _consentry_executable(), "serve", "--port", str(port)]
    env = _environment(backend, workdir / "data", port)
    with _spawned(command, env, log, port, "/health") as (pid, startup):
        yield Service(pid, f"http://127.0.0.1:{port}", _admin_key(log), startup, log)


@contextmanager
def running_floor(
    workdir: Path, kind: str, cpu: int = 0, nice: int = 0
) -> Iterator[tuple[int, str]]:
    """A floor app (bench/floor_app.py, `litestar` or `asgi`); yields its pid and URL."""
    port = free_port()
    command = [*pin(cpu, nice), sys.executable, str(FLOOR_APP), str(port), kind]
    with _spawned(command, dict(os.environ), workdir / "floor.log", port, "/floor") as (pid, _):
        yield pid, f"http://127.0.0.1:{port}/floor"


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["VmRSS"], "hwm": fields["VmHWM"]}


async def _seed(base_url: str, key: str, count: int, concurrency: int) -> None:
    pending = iter(range(count))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30.0, limits=limits
    ) as client:

        async def worker() -> None:
            for index in pending:
                body = {
                    "region": REGIONS[index % len(REGIONS)],
                    "identities": {"email": f"{customer_id(index)}@example.com"},
                    "attributes": {"plan": "pro" if index % 2 else "free"},
                }
                reply = await client.put(f"/v1/customers/{customer_id(index)}", json=body)
                reply.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def seed_customers(service: Service, count: int, concurrency: int = 16) -> float:
    """Create `count` customers; returns customers created per second."""
    started = time.perf_counter()
    asyncio.run(_seed(service.base_url, service.key, count, concurrency))
    return count / (time.perf_counter() - started)


async def _drop_schemas(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        for name in (schema, f"{schema}_keys"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def drop_backend(backend: Backend) -> None:
    """Drop the run's PostgreSQL schemas (data and key store); nothing to do for SQLite."""
    if backend.schema:
        asyncio.run(_drop_schemas(backend.schema))


async def _pg_reachable() -> str:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return ""


def postgres_problem() -> str:
    """Empty when PostgreSQL answers at PG_URL, else why not."""
    return asyncio.run(_pg_reachable())
