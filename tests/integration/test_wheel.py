"""The packaged install works: the wheel holds everything the service needs, and installed in a
fresh virtual environment (nothing of this checkout on its path) it serves from an empty folder.

The new environment gets its dependencies from the package index through pip's cache; this
checkout's environment lends only its pip (`pip --python`), never its site-packages, so the
editable install cannot stand in for the wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("consentry_email", "consentry_segments", "consentry_templates")
KEY = re.compile(r"\bck_[0-9a-f]{16}_[A-Za-z0-9_-]+")
START_TIMEOUT = 30.0


def pip(*args: str, timeout: float = 600) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# Left out of the copy that is built: a stale build/ would slip old files into the wheel.
NOT_SOURCE = {".git", ".venv", "build", "dist", "data", ".mypy_cache", ".ruff_cache"}


def not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {
        n
        for n in names
        if n == "__pycache__" or n.endswith(".egg-info") or (top and n in NOT_SOURCE)
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of this checkout (links kept as links)."""
    source, out = tmp_path_factory.mktemp("source") / "consentry", tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, source, symlinks=True, ignore=not_source)
    pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source))
    [built] = out.glob("consentry-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies; returns its bin/."""
    where = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    pip("--python", str(python), "install", "--quiet", "--no-compile", str(wheel))
    return where / "bin"


def source_data_files() -> list[str]:
    """Every file but Python source in the packages the wheel ships, as paths in the wheel."""
    roots = [ROOT / "src" / "consentry", *(ROOT / "plugins" / name for name in FIRST_PARTY)]
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if (
                path.is_file()
                and path.suffix not in (".py", ".pyc")
                and "__pycache__" not in str(path)
            ):
                found.append(f"{root.name}/{path.relative_to(root)}")
    return sorted(found)


def test_wheel_holds_the_default_policy_and_its_cases(wheel: Path) -> None:
    """The default policy and its test cases are package data."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "consentry/policy/default/default.yaml" in names
    assert "consentry/policy/default/tests/default.yaml" in names


def test_wheel_holds_every_data_file(wheel: Path) -> None:
    """Every template, policy and marker file of the shipped packages is in the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in source_data_files() if name not in names]
    assert not missing, f"add these to [tool.setuptools.package-data]: {missing}"


def test_wheel_holds_first_party_plugins_and_nothing_else(wheel: Path) -> None:
    """The first-party plugins ship in the wheel; the example third-party plugin does not."""
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert tops == {"consentry", *FIRST_PARTY, dist_info}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_health(process: subprocess.Popen[bytes], base: str, output: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited {process.returncode}:\n{output.read_text()}"
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer from /health:\n{output.read_text()}")


def test_installed_wheel_serves_from_an_empty_folder(venv: Path, tmp_path: Path) -> None:
    """`consentry serve` from the wheel, in an empty folder: /health answers 200, the packaged
    policy is used and the first-party plugins are loaded."""
    work, output, port = tmp_path / "work", tmp_path / "serve.out", free_port()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSENTRY_", "PYTHON"))}
    env |= {"CONSENTRY_DATA_DIR": str(tmp_path / "data"), "CONSENTRY_LOG_LEVEL": "warning"}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(venv / "consentry"), "serve", "--port", str(port)],
            cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(process, base, output)
        text = output.read_text()
        assert "(the packaged default)" in text and str(venv.parent) in text, text
        [key] = KEY.findall(text)
        r = httpx.get(base + "/v1/plugins", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert {p["name"] for p in r.json()["items"]} >= {"email", "segments", "templates"}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert list(work.iterdir()) == []
