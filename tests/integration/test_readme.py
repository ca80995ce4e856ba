"""The README's shell examples run as written against a started service.

Every block marked `<!-- readme-test: run -->` runs in bash (`set -euo pipefail`), in order, as a
new user would paste them: the service started from an empty folder on SQLite, `consentry` on
PATH, and `curl` failing on any error answer. Only the placeholders change: the bootstrap key
printed at the first start, and the port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- readme-test: run -->\n```sh\n(.*?)```", re.S)
BIN = Path(sys.executable).parent
PRELUDE = 'curl() { command curl --fail-with-body --show-error "$@"; }\n'


@dataclass(frozen=True)
class Service:
    folder: Path
    port: int
    key: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bootstrap_key(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if found := re.search(r"\b(ck_\S+)", line):
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError("no bootstrap key printed at the first start:\n" + "".join(seen))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CONSENTRY_DATA_DIR": str(tmp_path / "data"),
        "CONSENTRY_PORT": str(port),
    }
    process = subprocess.Popen(
        [str(BIN / "consentry"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        key = _bootstrap_key(process, time.monotonic() + 30)
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Service(tmp_path, port, key, env)
    finally:
        process.terminate()
        process.wait(timeout=30)


def readme_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def test_readme_marks_its_runnable_examples() -> None:
    """The first session, the audit commands and the data-subject requests are all checked."""
    blocks = readme_blocks()
    assert len(blocks) >= 3
    assert any("KEY=ck_..." in b for b in blocks)


def test_readme_shell_examples_run_as_written(service: Service) -> None:
    """Each marked block exits 0 with every curl answered 2xx, in order, in one data folder."""
    for number, block in enumerate(readme_blocks(), 1):
        script = block.replace("KEY=ck_...", f"KEY={service.key}").replace(
            "localhost:8000", f"127.0.0.1:{service.port}"
        )
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + PRELUDE + script],
            cwd=service.folder,
            env={**service.env, "KEY": service.key},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (
            f"README block {number} failed (exit {done.returncode}):\n{block}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
