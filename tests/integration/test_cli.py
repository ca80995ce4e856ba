"""The `consentry` command: policy check, and `serve` as a real process on both engines."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from consentry.settings import DEFAULT_POLICY, PACKAGED_POLICY

CONSENTRY = str(Path(sys.executable).with_name("consentry"))
KEY = re.compile(r"\bck_[0-9a-f]{16}_[A-Za-z0-9_-]+")
START_TIMEOUT = 20.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(extra)
    return env


def broken_policy(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the default policy with one bad legal basis; returns its path and that line."""
    lines = DEFAULT_POLICY.read_text(encoding="utf-8").splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if "legal_basis: legitimate_interest" in line)
    lines[target] = lines[target].replace("legitimate_interest", "because_we_can")
    path = tmp_path / "broken.yaml"
    path.write_text("".join(lines), encoding="utf-8")
    return path, target + 1


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSENTRY, *args], capture_output=True, text=True, timeout=60, env=env or clean_env()
    )


def test_policy_check_default_is_ok() -> None:
    """The default policy checks clean: exit 0 and a line naming the file."""
    done = run_cli("policy", "check", str(DEFAULT_POLICY))
    assert done.returncode == 0, done.stderr
    assert str(DEFAULT_POLICY) in done.stdout and "ok" in done.stdout
    done = run_cli("policy", "check")  # default path
    assert done.returncode == 0, done.stderr


def test_policy_check_broken_names_file_and_line(tmp_path: Path) -> None:
    """A broken policy exits non-zero with `file:line:` and what is wrong."""
    path, line = broken_policy(tmp_path)
    done = run_cli("policy", "check", str(path))
    assert done.returncode != 0
    assert f"{path}:{line}:" in done.stderr, done.stderr
    assert "because_we_can" in done.stderr


def test_policy_check_yaml_syntax_error(tmp_path: Path) -> None:
    """A YAML syntax error is reported with file and line too."""
    path = tmp_path / "syntax.yaml"
    path.write_text("languages: [en, ja]\ncategories:\n  contact: {sensitive: true\n")
    done = run_cli("policy", "check", str(path))
    assert done.returncode != 0
    assert re.search(rf"{re.escape(str(path))}:\d+:", done.stderr), done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    output: Path
    base: str

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def serve(env: dict[str, str], output: Path, cwd: Path | None = None) -> Iterator[Server]:
    """Start `consentry serve` on a free port; wait until /health answers; always stop it."""
    port = free_port()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [CONSENTRY, "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    server = Server(process, output, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.text()}")
            try:
                if httpx.get(server.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{server.text()}")
            time.sleep(0.1)
        yield server
    finally:
        stop(process)


def serve_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    return clean_env(
        CONSENTRY_DATA_DIR=str(data_dir),
        CONSENTRY_DATABASE_URL=database_url,
        CONSENTRY_LOG_LEVEL="warning",
        **extra,
    )


def get(server: Server, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(server.base + path, headers=headers, timeout=10)


async def test_serve_prints_urls_and_one_bootstrap_key(tmp_path: Path, database_url: str) -> None:
    """First start prints listen URL, docs URL and a working admin key; a restart prints none."""
    env = serve_env(tmp_path / "data", database_url)
    with serve(env, tmp_path / "first.out") as server:
        text = server.text()
        assert f"listening on {server.base}" in text, text
        assert f"{server.base}/schema" in text
        keys = KEY.findall(text)
        assert len(keys) == 1, text
        key = keys[0]
        assert get(server, "/v1/purposes", key).status_code == 200
        r = get(server, "/v1/customers", key)
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [], "next_cursor": None}
        r = httpx.put(
            server.base + "/v1/customers/c-1",
            json={"region": "EU"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        assert get(server, "/v1/customers", None).status_code == 401
        assert get(server, "/schema/openapi.json", None).status_code == 200
    assert server.process.returncode is not None

    with serve(env, tmp_path / "second.out") as again:
        text = again.text()
        assert f"listening on {again.base}" in text
        assert KEY.search(text) is None, "a second start must not print a new key"
        r = get(again, "/v1/customers", key)
        assert r.status_code == 200, r.text
        assert [c["external_id"] for c in r.json()["items"]] == ["c-1"]


async def test_serve_refuses_a_broken_policy(tmp_path: Path, database_url: str) -> None:
    """With a broken policy the service does not start and says file:line."""
    path, line = broken_policy(tmp_path)
    port = free_port()
    env = serve_env(tmp_path / "data", database_url, CONSENTRY_POLICY_PATH=str(path))
    try:
        done = subprocess.run(
            [CONSENTRY, "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:  # it started anyway: the test fails, nothing leaks
        raise AssertionError("the service started with a broken policy") from exc
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"{path}:{line}:" in output, output
    assert KEY.search(output) is None
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "something listens on the port"


def test_serve_says_where_it_created_the_data_folder(tmp_path: Path) -> None:
    """A first start names the data folder it created and the policy file it uses."""
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(CONSENTRY_DATA_DIR=str(tmp_path / "data"), CONSENTRY_LOG_LEVEL="warning")
    with serve(env, tmp_path / "first.out", cwd=work) as server:
        text = server.text()
        assert f"Created a new data folder at {tmp_path / 'data'}" in text, text
        assert f"Policy: {PACKAGED_POLICY.resolve()} (the packaged default)" in text
    with serve(env, tmp_path / "second.out", cwd=work) as again:
        assert "Created a new data folder" not in again.text()


NO_EMAIL = "email channel not configured: customer verification by email answers 503"


@pytest.mark.parametrize(("smtp", "warned"), [({}, True), ({"CONSENTRY_SMTP_HOST": "mx"}, False)])
def test_serve_warns_at_start_without_an_smtp_server(
    tmp_path: Path, smtp: dict[str, str], warned: bool
) -> None:
    """Without CONSENTRY_SMTP_HOST the start says that email verification will answer 503."""
    env = serve_env(tmp_path / "data", f"sqlite:///{tmp_path / 'c.sqlite'}", **smtp)
    with serve(env, tmp_path / "serve.out") as server:
        assert (NO_EMAIL in server.text()) is warned, server.text()


def test_serve_refuses_a_bad_plugin_setting_in_one_line(tmp_path: Path) -> None:
    """A plugin setting that does not convert stops the start with its name and exit code 2, not
    a traceback."""
    port = free_port()
    env = serve_env(
        tmp_path / "data", f"sqlite:///{tmp_path / 'c.sqlite'}", CONSENTRY_SMTP_PORT="twenty-five"
    )
    done = subprocess.run(
        [CONSENTRY, "serve", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "CONSENTRY_SMTP_PORT" in output and "Traceback" not in output, output
