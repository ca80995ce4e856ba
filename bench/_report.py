"""Figures, their DESIGN.md §11 targets, medians of runs, the printed table and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    reference: bool = False  # a raw machine limit from DESIGN.md, not a target
    derived: bool = False  # a budget that follows from a target (one core / target rate)
    digits: int = 0


HTTP_FIGURES = (
    Figure("write_rps", "consent writes/s, c=16", "req/s", 2_000),
    Figure("write_p50_ms", "  write p50", "ms", digits=1),
    Figure("write_p99_ms", "  write p99", "ms", 30, higher_is_better=False, digits=1),
    Figure("write_non_2xx", "  write non-2xx", "count"),
    Figure("check1_rps", "consent checks/s, c=1", "req/s"),
    Figure("check1_p50_ms", "  check c=1 p50", "ms", digits=2),
    Figure("check1_p99_ms", "  check c=1 p99", "ms", digits=2),
    Figure("check16_rps", "consent checks/s, c=16", "req/s", 8_000),
    Figure("check16_p50_ms", "  check c=16 p50", "ms", digits=1),
    Figure("check16_p99_ms", "  check c=16 p99", "ms", 10, higher_is_better=False, digits=1),
    Figure("check_non_2xx", "  check non-2xx (both)", "count"),
    Figure("write_server_cores", "server CPU during writes", "cores", digits=2),
    Figure("check16_server_cores", "server CPU during checks c=16", "cores", digits=2),
    Figure("write_cpu_us_per_req", "server CPU per write", "µs", 500, False, derived=True),
    Figure("check16_cpu_us_per_req", "server CPU per check", "µs", 125, False, derived=True),
    Figure("write_other_cores", "other CPU during writes (PG, jobs)", "cores", digits=2),
    Figure("check16_other_cores", "other CPU during checks c=16", "cores", digits=2),
    Figure("busy_before_cores", "machine busy before the run", "cores", digits=2),
    Figure("rss_mib", "RSS after load", "MiB", 80, higher_is_better=False, digits=1),
    Figure("hwm_mib", "  peak RSS (VmHWM)", "MiB", digits=1),
    Figure("startup_s", "spawn to first 200 on /health", "s", 2, higher_is_better=False, digits=2),
    Figure("seed_rps", "seeding PUT customer/s, c=16", "req/s"),
)
LOCAL_FIGURES = (
    Figure("gate_per_s", "gate decisions/s in process", "1/s", 200_000),
    Figure("floor_rps", "framework floor: bare Litestar, c=16", "req/s", 20_000, reference=True),
    Figure("floor_p99_ms", "  floor p99", "ms", digits=1),
    Figure("floor_server_cores", "  floor server CPU", "cores", digits=2),
    Figure("floor_cpu_us_per_req", "  floor server CPU per request", "µs", 50, False, True),
    Figure("asgi_floor_rps", "server floor: raw ASGI on uvicorn", "req/s"),
    Figure("asgi_floor_p99_ms", "  server floor p99", "ms", digits=1),
    Figure("asgi_floor_cpu_us_per_req", "  server floor CPU per request", "µs"),
    Figure("sqlite_commits_per_s", "raw SQLite WAL FULL commits/s", "1/s", 6_000, reference=True),
    Figure("pg_commits_per_s", "raw PostgreSQL commits/s, 1 conn", "1/s", 3_000, reference=True),
    Figure("busy_before_cores", "machine busy before the run", "cores", digits=2),
)


def medians(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys = {k for run in runs for k in run}
    return {k: statistics.median(run[k] for run in runs if k in run) for k in sorted(keys)}


def ratio(figure: Figure, value: float) -> float | None:
    """Normalised so that >= 1.0 always means the target (or reference) is met."""
    if figure.target is None or value == 0:
        return None
    return value / figure.target if figure.higher_is_better else figure.target / value


def _target_text(figure: Figure) -> str:
    if figure.target is None:
        return ""
    sign = "~" if figure.reference else ("≥" if figure.higher_is_better else "≤")
    return f"{sign} {figure.target:,.{figure.digits}f}{'*' if figure.derived else ''}"


def _verdict(figure: Figure, value: float) -> str:
    r = ratio(figure, value)
    if r is None:
        return ""
    if figure.reference:
        return f"{r:.2f}x ref"
    return f"{r:.2f}x {'ok' if r >= 1 else 'MISS'}"


def _row(figure: Figure, value: float | None) -> str:
    shown = "skipped" if value is None else f"{value:,.{figure.digits}f}"
    verdict = "" if value is None else _verdict(figure, value)
    return (
        f"  {figure.label:<33} {shown:>11} {figure.unit:<6} {_target_text(figure):>10}  {verdict}"
    )


def table(http: Mapping[str, Mapping[str, float]], local: Mapping[str, float]) -> str:
    header = f"  {'figure':<33} {'median':>11} {'unit':<6} {'target':>10}  x target"
    lines: list[str] = []
    for backend, values in http.items():
        lines += ["", f"[{backend}] over HTTP (service on CPU 0, wrk on CPU 1)", header]
        lines += [_row(f, values.get(f.key)) for f in HTTP_FIGURES]
    lines += ["", "[in process, and what this machine gives right now]", header]
    lines += [_row(f, local[f.key]) for f in LOCAL_FIGURES if f.key in local]
    lines += [
        "",
        "x target: figure/target for 'higher is better', target/figure for 'lower is better'"
        " (>= 1.00 meets). Write targets are stated for SQLite; '~' marks a raw machine"
        " reference from DESIGN.md §11, not a target. * CPU budget that follows from a target on"
        " one core (1 s / 2,000 writes, 1 s / 8,000 checks, 1 s / 20,000 floor requests): CPU"
        " per request moves less than throughput when other jobs share the machine.",
    ]
    return "\n".join(lines)


def _figure_json(figure: Figure, values: Mapping[str, float], runs: Sequence[Any]) -> Any:
    value = values.get(figure.key)
    return {
        "median": value,
        "unit": figure.unit,
        "target": figure.target,
        "target_is": "reference"
        if figure.reference
        else ("min" if figure.higher_is_better else "max"),
        "ratio": None if value is None else ratio(figure, value),
        "runs": [run.get(figure.key) for run in runs],
    }


def write_json(
    path: Path,
    meta: Mapping[str, Any],
    http_runs: Mapping[str, Sequence[Mapping[str, Any]]],
    local_runs: Sequence[Mapping[str, float]],
) -> None:
    backends = {}
    for name, runs in http_runs.items():
        values = medians([{k: v for k, v in r.items() if isinstance(v, int | float)} for r in runs])
        backends[name] = {
            "figures": {f.key: _figure_json(f, values, runs) for f in HTTP_FIGURES},
            "statuses": [r.get("statuses") for r in runs],
        }
    local = medians(local_runs)
    document = {
        **meta,
        "backends": backends,
        "in_process": {
            f.key: _figure_json(f, local, local_runs) for f in LOCAL_FIGURES if f.key in local
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
