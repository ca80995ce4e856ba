"""Drive wrk with one of the Lua scripts in bench/wrk/ and parse the JSON line it prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from _service import pin

SCRIPTS = Path(__file__).resolve().parent / "wrk"
MARKER = "BENCH_JSON "
INSTALL_HINT = "wrk is not installed: run `apt-get update && apt-get install -y wrk`"


@dataclass(frozen=True, slots=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int]


def wrk_missing() -> str:
    """Empty when wrk is on PATH, else how to install it."""
    return "" if shutil.which("wrk") else INSTALL_HINT


def _parse(stdout: str) -> Load:
    line = next((x for x in stdout.splitlines() if x.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{stdout}")
    raw = json.loads(line.removeprefix(MARKER))
    statuses = {str(k): int(v) for k, v in raw["status"].items()}
    return Load(
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        non_2xx=sum(n for code, n in statuses.items() if not code.startswith("2")),
        socket_errors=raw["socket_errors"] + raw["timeouts"],
        statuses=statuses,
    )


def run_wrk(
    url: str,
    script: str,
    *,
    key: str | None,
    connections: int,
    seconds: float,
    customers: int = 0,
    cpu: int = 1,
    nice: int = 0,
) -> Load:
    """One closed-loop wrk run (1 thread, `connections` connections) pinned to `cpu`."""
    command = [
        *pin(cpu, nice),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        *(["-H", f"Authorization: Bearer {key}"] if key else []),
        "-s",
        str(SCRIPTS / script),
        url,
        "--",
        str(customers),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return _parse(done.stdout)
