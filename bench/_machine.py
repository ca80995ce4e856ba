"""CPU accounting from /proc: how busy the server was, and how much else ran on the machine."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU-seconds spent busy (not idle, not iowait) by all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS


def process_cpu_s(pid: int) -> float:
    """User + system CPU-seconds of a process (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_cpu_s() -> float:
    """CPU-seconds of this process's waited-for children (wrk runs)."""
    times = os.times()
    return times.children_user + times.children_system


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    machine: float
    server: float
    children: float


def sample(pid: int) -> CpuSample:
    return CpuSample(time.perf_counter(), machine_busy_s(), process_cpu_s(pid), children_cpu_s())


def cpu_use(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """Cores used by the server, and by everything but the server and wrk (others' jobs, PG)."""
    wall = after.wall - before.wall
    server = after.server - before.server
    load = after.children - before.children
    other = (after.machine - before.machine) - server - load
    return {"server_cores": server / wall, "other_cores": max(0.0, other / wall)}


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the machine keeps busy over `seconds` (before starting a run)."""
    start, began = machine_busy_s(), time.perf_counter()
    time.sleep(seconds)
    return (machine_busy_s() - start) / (time.perf_counter() - began)


def wait_until_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait up to `max_wait` seconds for other work to stop; returns the last busy-cores figure."""
    deadline = time.perf_counter() + max_wait
    busy = busy_cores()
    while busy > threshold and time.perf_counter() < deadline:
        busy = busy_cores()
    return busy
