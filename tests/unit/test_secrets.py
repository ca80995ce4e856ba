"""Service secrets: from settings, or generated once into data_dir/secrets."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from consentry.crypto.secrets import Secrets, kek_id, load_or_create_secrets
from consentry.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_once_and_reused(tmp_path: Path) -> None:
    """Secrets are generated on first use and the same ones are loaded afterwards."""
    first = load_or_create_secrets(Settings(data_dir=tmp_path))
    second = load_or_create_secrets(Settings(data_dir=tmp_path))
    assert first == second
    assert {len(first.kek), len(first.index_key), len(first.token_key)} == {32}
    assert len({first.kek, first.index_key, first.token_key}) == 3


def test_generated_files_are_private(tmp_path: Path) -> None:
    """The secrets directory is 0700 and each key file 0600, with no temp files left."""
    load_or_create_secrets(Settings(data_dir=tmp_path))
    folder = tmp_path / "secrets"
    assert _mode(folder) == 0o700
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["index_key.key", "kek.key", "signing_key.key", "token_key.key"]
    assert all(_mode(folder / name) == 0o600 for name in names)


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    """A key file already on disk is used as it is."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    mine = os.urandom(32)
    (folder / "kek.key").write_text(base64.b64encode(mine).decode() + "\n")
    assert load_or_create_secrets(Settings(data_dir=tmp_path)).kek == mine
    assert (folder / "kek.key").read_text().strip() == base64.b64encode(mine).decode()


def test_explicit_setting_wins(tmp_path: Path) -> None:
    """A base64 key in settings is used instead of any file, and no file is written for it."""
    kek, token_key = os.urandom(32), os.urandom(32)
    settings = Settings(
        data_dir=tmp_path,
        kek=base64.b64encode(kek).decode(),
        token_key=base64.b64encode(token_key).decode(),
    )
    loaded = load_or_create_secrets(settings)
    assert loaded.kek == kek
    assert loaded.token_key == token_key
    assert not (tmp_path / "secrets" / "kek.key").exists()
    assert (tmp_path / "secrets" / "index_key.key").exists()


@pytest.mark.parametrize(
    ("field", "env_var"),
    [
        ("kek", "CONSENTRY_KEK"),
        ("index_key", "CONSENTRY_INDEX_KEY"),
        ("token_key", "CONSENTRY_TOKEN_KEY"),
    ],
)
def test_wrong_length_names_env_var(tmp_path: Path, field: str, env_var: str) -> None:
    """A key of the wrong length is refused with an error naming its environment variable."""
    short = base64.b64encode(os.urandom(16)).decode()
    settings = {
        "kek": Settings(data_dir=tmp_path, kek=short),
        "index_key": Settings(data_dir=tmp_path, index_key=short),
        "token_key": Settings(data_dir=tmp_path, token_key=short),
    }[field]
    with pytest.raises(ValueError, match=env_var) as caught:
        load_or_create_secrets(settings)
    assert "32 bytes" in str(caught.value)


def test_bad_base64_names_env_var(tmp_path: Path) -> None:
    """A key that is not base64 is refused with an error naming its environment variable."""
    with pytest.raises(ValueError, match="CONSENTRY_KEK"):
        load_or_create_secrets(Settings(data_dir=tmp_path, kek="not base64!!"))


def test_secrets_repr_hides_keys(tmp_path: Path) -> None:
    """Printing the secrets never shows key material."""
    loaded = load_or_create_secrets(Settings(data_dir=tmp_path))
    text = repr(loaded) + str(loaded)
    assert loaded.kek.hex() not in text
    assert repr(loaded.kek) not in text
    assert isinstance(loaded, Secrets)


def test_kek_id_is_short_stable_fingerprint() -> None:
    """The KEK id is the first 8 hex characters of its sha256."""
    assert kek_id(b"\x00" * 32) == "66687aad"
    assert kek_id(b"\x00" * 32) != kek_id(b"\x01" * 32)
