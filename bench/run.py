"""Consentry benchmarks: the figures of DESIGN.md §11 that the service can show today.

    python bench/run.py [--backend sqlite|postgres|both] [--duration 10] [--runs 3] [--quick]
                        [--customers 1000] [--wait-idle 10] [--nice 0]

For each backend and run: a fresh `consentry serve` pinned to CPU 0 (fresh data dir or fresh
PostgreSQL schema, dropped afterwards), seeded with customers, then loaded by wrk pinned to CPU 1.
Then the floors (a bare Litestar app and a raw ASGI app, served and loaded the same way), gate
decisions/s and the machine's raw durable commit rates. Prints a table of medians with the
targets and writes bench/results/latest.json. Only 127.0.0.1 is contacted; every step is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _machine import cpu_use, sample, wait_until_quiet
from _micro import gate_decisions_per_s, postgres_commits_per_s, sqlite_commits_per_s
from _report import medians, table, write_json
from _service import (
    PG_URL,
    Service,
    drop_backend,
    memory_mib,
    new_backend,
    pin,
    postgres_problem,
    running_floor,
    running_service,
    seed_customers,
)
from _wrk import Load, run_wrk, wrk_missing

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SERVER_CPU, LOAD_CPU = 0, 1


@dataclass(frozen=True, slots=True)
class Options:
    backends: tuple[str, ...]
    duration: float
    runs: int
    customers: int
    warmup: float
    commit_seconds: float
    gate_seconds: float
    wait_idle: float
    nice: int


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--customers", type=int, default=1_000, help="customers seeded")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=10.0,
        help="before each run, wait up to this many seconds for other jobs to leave the CPUs",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run server, wrk and this script at this nice level (e.g. -10 on a shared machine)",
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s, 200 customers")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    if args.quick:
        quick = min(args.wait_idle, 5.0)
        return Options(backends, 3.0, 1, 200, 1.0, 1.0, 0.5, quick, args.nice)
    runs = max(1, args.runs)
    return Options(
        backends, args.duration, runs, args.customers, 2.0, 2.0, 1.0, args.wait_idle, args.nice
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load(
    service: Service, script: str, connections: int, seconds: float, opts: Options
) -> tuple[Load, dict[str, float]]:
    """One wrk run, and the cores the server and everything else used meanwhile."""
    before = sample(service.pid)
    load = run_wrk(
        service.base_url,
        script,
        key=service.key,
        connections=connections,
        seconds=seconds,
        customers=opts.customers,
        cpu=LOAD_CPU,
        nice=opts.nice,
    )
    return load, cpu_use(before, sample(service.pid))


def _figures(prefix: str, measured: tuple[Load, dict[str, float]]) -> dict[str, float]:
    load, cpu = measured
    return {
        f"{prefix}_rps": load.rps,
        f"{prefix}_p50_ms": load.p50_ms,
        f"{prefix}_p99_ms": load.p99_ms,
        f"{prefix}_server_cores": cpu["server_cores"],
        f"{prefix}_cpu_us_per_req": 1e6 * cpu["server_cores"] / load.rps if load.rps else 0.0,
        f"{prefix}_other_cores": cpu["other_cores"],
    }


def measure_service(service: Service, opts: Options) -> dict[str, Any]:
    """Seed, warm up, then writes c=16, checks c=1 and c=16, then memory."""
    seed_rps = seed_customers(service, opts.customers)
    _load(service, "check.lua", 16, opts.warmup, opts)
    write = _load(service, "consent_write.lua", 16, opts.duration, opts)
    check1 = _load(service, "check.lua", 1, opts.duration, opts)
    check16 = _load(service, "check.lua", 16, opts.duration, opts)
    memory = memory_mib(service.pid)
    loads = {"write": write[0], "check1": check1[0], "check16": check16[0]}
    return {
        **_figures("write", write),
        **_figures("check1", check1),
        **_figures("check16", check16),
        "write_non_2xx": loads["write"].non_2xx + loads["write"].socket_errors,
        "check_non_2xx": sum(
            loads[k].non_2xx + loads[k].socket_errors for k in ("check1", "check16")
        ),
        "rss_mib": memory["rss"],
        "hwm_mib": memory["hwm"],
        "startup_s": service.startup_s,
        "seed_rps": seed_rps,
        "statuses": {name: load.statuses for name, load in loads.items()},
    }


def http_run(backend_name: str, opts: Options) -> dict[str, Any]:
    backend = new_backend(backend_name)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="consentry-bench-") as folder,
            running_service(backend, Path(folder), cpu=SERVER_CPU, nice=opts.nice) as service,
        ):
            return measure_service(service, opts)
    finally:
        drop_backend(backend)


def _quiet(opts: Options) -> float:
    busy = wait_until_quiet(opts.wait_idle)
    if busy > 0.15:
        log(f"warning: other jobs keep {busy:.2f} cores busy; figures will read low")
    return busy


def floor_run(opts: Options, kind: str) -> dict[str, float]:
    """A floor app (`litestar` or `asgi`), served and loaded like the service (c=16)."""
    with (
        tempfile.TemporaryDirectory(prefix="consentry-bench-") as folder,
        running_floor(Path(folder), kind, cpu=SERVER_CPU, nice=opts.nice) as (pid, url),
    ):
        run_wrk(url, "plain.lua", key=None, connections=16, seconds=opts.warmup, nice=opts.nice)
        before = sample(pid)
        load = run_wrk(
            url, "plain.lua", key=None, connections=16, seconds=opts.duration, nice=opts.nice
        )
        cpu = cpu_use(before, sample(pid))
    prefix = "floor" if kind == "litestar" else "asgi_floor"
    return {
        f"{prefix}_rps": load.rps,
        f"{prefix}_p99_ms": load.p99_ms,
        f"{prefix}_server_cores": cpu["server_cores"],
        f"{prefix}_cpu_us_per_req": 1e6 * cpu["server_cores"] / load.rps if load.rps else 0.0,
    }


def floor_figures(opts: Options) -> list[dict[str, float]]:
    runs = []
    for i in range(opts.runs):
        _quiet(opts)
        log(f"floors (bare Litestar, raw ASGI): run {i + 1}/{opts.runs}")
        runs.append({**floor_run(opts, "litestar"), **floor_run(opts, "asgi")})
    return runs


def http_figures(opts: Options) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for name in opts.backends:
        results[name] = []
        for i in range(opts.runs):
            busy = _quiet(opts)
            log(f"{name}: run {i + 1}/{opts.runs} (about {3 * opts.duration + 10:.0f} s)")
            run = {**http_run(name, opts), "busy_before_cores": busy}
            log(
                f"{name}: writes {run['write_rps']:,.0f}/s p99 {run['write_p99_ms']:.1f} ms;"
                f" checks c=16 {run['check16_rps']:,.0f}/s p99 {run['check16_p99_ms']:.1f} ms"
            )
            results[name].append(run)
    return results


def local_figures(opts: Options, postgres: bool) -> list[dict[str, float]]:
    runs: list[dict[str, float]] = []
    for i in range(opts.runs):
        busy = _quiet(opts)
        log(f"in process: run {i + 1}/{opts.runs}")
        run = {
            "busy_before_cores": busy,
            "gate_per_s": gate_decisions_per_s(opts.gate_seconds),
            "sqlite_commits_per_s": sqlite_commits_per_s(opts.commit_seconds),
        }
        if postgres:
            run["pg_commits_per_s"], _ = postgres_commits_per_s(PG_URL, opts.commit_seconds)
        runs.append(run)
    return runs


def _tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    return (done.stdout or done.stderr).splitlines()[0].strip() if done.stdout + done.stderr else ""


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def source_fingerprint() -> dict[str, str]:
    """Which code was measured: a hash of src/ and policies/, and the newest file (no git)."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(
        f for folder in ("src", "policies") for f in (root / folder).rglob("*") if f.is_file()
    )
    files = [f for f in files if "__pycache__" not in f.parts]
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    newest = max(files, key=lambda f: f.stat().st_mtime)
    when = datetime.fromtimestamp(newest.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return {
        "sha256": digest.hexdigest()[:16],
        "newest_file": str(newest.relative_to(root)),
        "newest_mtime": when,
    }


def metadata(opts: Options, pg_settings: dict[str, str], source: dict[str, str]) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "source": source,
        "options": asdict(opts),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "wrk": _tool_version(["wrk", "--version"]),
            "pinning": "taskset" if pin(LOAD_CPU) else "none",
            "postgres_durability": pg_settings,
        },
    }


def _usable_backends(opts: Options) -> Options:
    if "postgres" not in opts.backends:
        return opts
    problem = postgres_problem()
    if not problem:
        return opts
    log(f"PostgreSQL at {PG_URL} is not reachable ({problem}): skipping the postgres backend")
    kept = tuple(b for b in opts.backends if b != "postgres")
    return replace(opts, backends=kept)


def _pin_self(nice: int) -> None:
    """The orchestrator (seeding client, in-process figures) stays off the server's core."""
    if (os.cpu_count() or 1) > LOAD_CPU:
        os.sched_setaffinity(0, {LOAD_CPU})
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def main(argv: Sequence[str] | None = None) -> int:
    opts = _usable_backends(parse_args(argv))
    source = source_fingerprint()
    _pin_self(opts.nice)
    missing = wrk_missing()
    if missing:
        log(f"{missing}. Skipping the HTTP figures; the in-process figures follow.")
    http = {} if missing else http_figures(opts)
    floor = [{}] * opts.runs if missing else floor_figures(opts)
    postgres = "postgres" in opts.backends
    local = [
        {**run, **extra} for run, extra in zip(local_figures(opts, postgres), floor, strict=True)
    ]
    pg_settings = postgres_commits_per_s(PG_URL, 0.01)[1] if postgres else {}
    after = source_fingerprint()
    if after["sha256"] != source["sha256"]:
        log(
            f"warning: src/ or policies/ changed during the run ({after['newest_file']} at"
            f" {after['newest_mtime']}); servers started after that ran the newer code"
        )
        source = {**source, "changed_during_run": after["newest_mtime"]}
    write_json(RESULTS, metadata(opts, pg_settings, source), http, local)
    http_medians = {
        name: medians([{k: v for k, v in r.items() if isinstance(v, int | float)} for r in runs])
        for name, runs in http.items()
    }
    print(
        f"code measured: src+policies sha256 {source['sha256']}, newest file"
        f" {source['newest_file']} ({source['newest_mtime']})"
    )
    print(table(http_medians, medians(local)))
    print(f"\nresults: {RESULTS}")
    return 2 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
