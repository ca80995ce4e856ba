"""Profile the service under one wrk workload with py-spy and print where the time goes.

    python bench/profile_server.py [--backend sqlite|postgres] [--workload write|check]
        [--duration 10] [--gil] [--idle] [--native]

Starts a fresh service pinned to CPU 0, seeds it, runs wrk (c=16) pinned to CPU 1 and, meanwhile,
`py-spy record` on the server (also on CPU 1). Writes the collapsed stacks to
bench/results/profile-<backend>-<workload>.txt (open in speedscope or flamegraph.pl) and prints
the top functions by own time and by inclusive time, and own time grouped by package.
Needs py-spy (`pip install py-spy`) and wrk.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _service import drop_backend, new_backend, pin, running_service, seed_customers
from _wrk import Load, run_wrk, wrk_missing

RESULTS = Path(__file__).resolve().parent / "results"
SCRIPTS = {"write": "consent_write.lua", "check": "check.lua"}
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
PACKAGES = (
    "consentry",
    "litestar",
    "piccolo",
    "asyncpg",
    "aiosqlite",
    "sqlite3",
    "uvicorn",
    "httptools",
    "msgspec",
    "uvloop",
    "asyncio",
    "cryptography",
    "json",
    "logging",
)


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    for line in text.splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def _package(frame: str) -> str:
    match = FRAME.match(frame)
    path = match.group("file") if match else frame
    for name in PACKAGES:
        if f"/{name}/" in path or path.startswith(f"{name}/") or f"/{name}.py" in path:
            return name
    return "other: " + (Path(path).name if match else frame)


def summarise(stacks: list[tuple[list[str], int]], top: int = 20) -> str:
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples"]
    for title, counts in (
        ("own time by package", packages),
        ("own time by function", own),
        ("inclusive time by function", inclusive),
    ):
        lines += ["", title]
        lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]
    return "\n".join(lines)


def record(pid: int, seconds: float, output: Path, flags: Sequence[str]) -> None:
    command = [
        *pin(1),
        _py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
        *flags,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=seconds + 60)


def profile(
    backend_name: str, workload: str, seconds: float, flags: Sequence[str]
) -> tuple[Load, Path]:
    backend = new_backend(backend_name)
    output = RESULTS / f"profile-{backend_name}-{workload}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="consentry-profile-") as folder,
            running_service(backend, Path(folder)) as service,
            ThreadPoolExecutor(1) as pool,
        ):
            seed_customers(service, 1_000)
            load = pool.submit(
                run_wrk,
                service.base_url,
                SCRIPTS[workload],
                key=service.key,
                connections=16,
                seconds=seconds + 2,
                customers=1_000,
            )
            record(service.pid, seconds, output, flags)
            return load.result(), output
    finally:
        drop_backend(backend)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workload", choices=tuple(SCRIPTS), default="write")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--native", action="store_true", help="include C frames")
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL: where Python CPU goes"
    )
    parser.add_argument("--idle", action="store_true", help="also samples of waiting threads")
    args = parser.parse_args(argv)
    flags = [f"--{name}" for name in ("native", "gil", "idle") if getattr(args, name)]
    problem = wrk_missing() or ("" if _py_spy() else "py-spy is missing: pip install py-spy")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    load, output = profile(args.backend, args.workload, args.duration, flags)
    mode = " ".join(flags) or "(on-CPU)"
    print(
        f"{args.backend} {args.workload} c=16, py-spy {mode}: {load.rps:,.0f} req/s,"
        f" p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, statuses {load.statuses}"
    )
    print(summarise(parse_collapsed(output.read_text())))
    print(f"\ncollapsed stacks: {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
