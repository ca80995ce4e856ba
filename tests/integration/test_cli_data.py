"""Commands that work on existing data refuse to start where there is none, and say where they
looked and how to point them elsewhere; settings mistakes are told, not swallowed."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

CONSENTRY = str(Path(sys.executable).with_name("consentry"))
NO_DATA = 2  # the exit code of a command that found no data where it looked


def consentry(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`consentry ARGS` in `cwd`, with no CONSENTRY_* variables but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    return subprocess.run(
        [CONSENTRY, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "CONSENTRY_LOG_LEVEL": "warning", **env},
    )


def make_data(folder: Path) -> Path:
    """A data folder with its database and secrets, as `consentry migrate --create` makes it."""
    done = consentry(folder, "--data-dir", str(folder / "data"), "migrate", "--create")
    assert done.returncode == 0, done.stderr
    return folder / "data"


NEEDS_DATA = [
    ["migrate"],
    ["audit", "verify"],
    ["audit", "checkpoint"],
    ["audit", "keys"],
    ["audit", "rotate-key"],
    ["audit", "export", "--output", "out.jsonl"],
    ["requests", "list"],
    ["requests", "show", "00000000-0000-0000-0000-000000000000"],
    ["erase", "crm-1"],
]


@pytest.mark.parametrize("args", NEEDS_DATA, ids=" ".join)
def test_refuses_to_create_a_data_folder(tmp_path: Path, args: list[str]) -> None:
    """Run where there is no data, a command exits 2 naming the folder and creates nothing."""
    done = consentry(tmp_path, *args)
    assert done.returncode == NO_DATA, done.stdout + done.stderr
    assert str(tmp_path / "data") in done.stderr
    assert "--data-dir" in done.stderr and "CONSENTRY_DATA_DIR" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_missing_secrets_beside_a_database(tmp_path: Path) -> None:
    """A database whose secrets are gone is refused: new secrets would not open its data."""
    data = make_data(tmp_path)
    (data / "secrets" / "kek.key").unlink()
    done = consentry(tmp_path, "--data-dir", str(data), "requests", "list")
    assert done.returncode == NO_DATA, done.stderr
    assert str(data / "secrets" / "kek.key") in done.stderr
    assert not (data / "secrets" / "kek.key").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_data_dir_option_anywhere(tmp_path: Path, where: str) -> None:
    """--data-dir works before the command and after it, and wins over CONSENTRY_DATA_DIR."""
    data = make_data(tmp_path)
    option = ["--data-dir", str(data)]
    args = [*option, "audit", "keys"] if where == "before" else ["audit", "keys", *option]
    done = consentry(tmp_path, *args, CONSENTRY_DATA_DIR=str(tmp_path / "wrong"))
    assert done.returncode == 0, done.stderr
    assert '"keys"' in done.stdout


def test_empty_request_list_says_so(tmp_path: Path) -> None:
    """`requests list` with nothing to show says "no requests match" on stderr, and exits 0."""
    data = make_data(tmp_path)
    done = consentry(tmp_path, "--data-dir", str(data), "requests", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "no requests match" in done.stderr


def test_migrate_create_says_where(tmp_path: Path) -> None:
    """`migrate --create` makes a new data folder and says where."""
    done = consentry(tmp_path, "migrate", "--create")
    assert done.returncode == 0, done.stderr
    assert f"created a new data folder at {tmp_path / 'data'}" in done.stderr


def test_unknown_variable_is_reported(tmp_path: Path) -> None:
    """A misspelled CONSENTRY_* variable is reported on stderr, with the setting it resembles."""
    done = consentry(tmp_path, "policy", "check", CONSENTRY_EXPORT_LINK_TTL="60")
    assert done.returncode == 0, done.stderr
    assert "CONSENTRY_EXPORT_LINK_TTL is not a setting" in done.stderr
    assert "did you mean CONSENTRY_EXPORT_LINK_TTL_SECONDS" in done.stderr


def test_bad_setting_value_exits_2(tmp_path: Path) -> None:
    """A setting that does not convert stops any command with its name, not a traceback."""
    done = consentry(tmp_path, "policy", "check", CONSENTRY_PORT="eighty")
    assert done.returncode == 2
    assert "CONSENTRY_PORT" in done.stderr and "Traceback" not in done.stderr


def test_config_file_option(tmp_path: Path) -> None:
    """--config reads a TOML settings file: here its data_dir is where the data is found."""
    data = make_data(tmp_path)
    config = tmp_path / "consentry.toml"
    config.write_text(f"data_dir = {str(data)!r}\n")
    done = consentry(tmp_path / "data", "--config", str(config), "requests", "list")
    assert done.returncode == 0, done.stderr
    assert "no requests match" in done.stderr


def test_config_file_unknown_key(tmp_path: Path) -> None:
    """An unknown key in the --config file exits 2 naming the file and the key."""
    config = tmp_path / "consentry.toml"
    config.write_text("data_folder = 'x'\n")
    done = consentry(tmp_path, "--config", str(config), "policy", "check")
    assert done.returncode == 2
    assert f"{config}: unknown key 'data_folder'" in done.stderr


def test_settings_command_prints_the_table(tmp_path: Path) -> None:
    """`consentry settings` prints every setting's variable, default and meaning."""
    done = consentry(tmp_path, "settings")
    assert done.returncode == 0, done.stderr
    assert "| `CONSENTRY_EXPORT_LINK_TTL_SECONDS` | `259200` |" in done.stdout


async def test_refuses_an_empty_database(tmp_path: Path, database_url: str) -> None:
    """With secrets configured, a database without Consentry's tables is refused, not filled."""
    keys = {
        f"CONSENTRY_{name}": base64.b64encode(os.urandom(32)).decode()
        for name in ("KEK", "INDEX_KEY", "TOKEN_KEY", "SIGNING_KEY")
    }
    done = consentry(tmp_path, "requests", "list", CONSENTRY_DATABASE_URL=database_url, **keys)
    assert done.returncode == NO_DATA, done.stdout + done.stderr
    assert "consentry migrate" in done.stderr
    assert list(tmp_path.iterdir()) == []
    if database_url.startswith("postgresql"):
        conn = await asyncpg.connect(database_url.partition("?")[0])
        schema = database_url.rpartition("search_path=")[2]
        tables = await conn.fetch(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1", schema
        )
        await conn.close()
        assert tables == []
