"""Settings: every `Settings` field is a CONSENTRY_* variable, a file key and a README row."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from consentry.settings import Settings, SettingsError, settings_table, unknown_names

ROOT = Path(__file__).resolve().parents[2]
SAMPLES: dict[object, tuple[str, object]] = {
    Path: ("/tmp/elsewhere", Path("/tmp/elsewhere")),
    str: ("some-text", "some-text"),
    int: ("4242", 4242),
    float: ("2.5", 2.5),
    bool: ("false", False),
}
HINTS = typing.get_type_hints(Settings)
# every field but the internal one (`plugin_sources`: where plugins' settings are read from)
SETTING_FIELDS = [f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]
FIELDS = [f.name for f in SETTING_FIELDS]


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_read_from_its_variable(name: str) -> None:
    """CONSENTRY_<FIELD> in upper case sets every field, converted to the field's type."""
    raw, expected = SAMPLES[HINTS[name]]
    settings = Settings.from_env({"CONSENTRY_" + name.upper(): raw})
    assert getattr(settings, name) == expected
    assert getattr(Settings(), name) != expected


def test_export_link_ttl_is_read_from_the_environment() -> None:
    """CONSENTRY_EXPORT_LINK_TTL_SECONDS, documented in the README, takes effect."""
    env = {"CONSENTRY_EXPORT_LINK_TTL_SECONDS": "60"}
    assert Settings.from_env(env).export_link_ttl_seconds == 60


@pytest.mark.parametrize(
    ("variable", "raw", "words"),
    [
        ("CONSENTRY_PORT", "eighty", "whole number"),
        ("CONSENTRY_LOG_JSON", "flase", "true or false"),
        ("CONSENTRY_PLUGIN_TIMEOUT_SECONDS", "soon", "number"),
    ],
)
def test_a_bad_value_names_the_variable(variable: str, raw: str, words: str) -> None:
    """A value that does not convert is refused with the variable's name and what it takes."""
    with pytest.raises(SettingsError, match=f"{variable}.*{words}"):
        Settings.from_env({variable: raw})


def test_unknown_variable_suggests_the_close_one() -> None:
    """A misspelled CONSENTRY_* name is reported with a "did you mean" suggestion."""
    found = unknown_names({"CONSENTRY_EXPORT_LINK_TTL": "60", "HOME": "/root"})
    assert len(found) == 1
    assert "CONSENTRY_EXPORT_LINK_TTL" in found[0]
    assert "did you mean CONSENTRY_EXPORT_LINK_TTL_SECONDS" in found[0]


@pytest.mark.parametrize(
    "variable",
    [
        "CONSENTRY_KEK",
        "CONSENTRY_KEK_FILE",
        "CONSENTRY_CONFIG",
        "CONSENTRY_SMTP_HOST",  # the email plugin's own
        "CONSENTRY_CHAT_WEBHOOK_URL",  # a plugin's namespace, given by the caller
        "CONSENTRY_TEST_BACKENDS",  # the test suite's own
    ],
)
def test_known_variables_are_not_reported(variable: str) -> None:
    """Settings, their _FILE variants and other components' namespaces raise no warning."""
    assert unknown_names({variable: "x"}, namespaces=["chat"]) == []


def test_secret_read_from_file_without_its_newline(tmp_path: Path) -> None:
    """CONSENTRY_KEK_FILE (a Docker secret) gives the KEK, without the file's trailing newline."""
    secret = tmp_path / "kek"
    secret.write_text("c2VjcmV0\n")
    assert Settings.from_env({"CONSENTRY_KEK_FILE": str(secret)}).kek == "c2VjcmV0"


@pytest.mark.parametrize(
    "name", ["kek", "index_key", "token_key", "signing_key", "database_url", "keystore_url"]
)
def test_every_secret_has_a_file_variant(name: str, tmp_path: Path) -> None:
    """Each secret setting can be read from the file CONSENTRY_<NAME>_FILE names."""
    secret = tmp_path / name
    secret.write_text("value-from-file\n")
    settings = Settings.from_env({f"CONSENTRY_{name.upper()}_FILE": str(secret)})
    assert getattr(settings, name) == "value-from-file"


def test_plain_settings_have_no_file_variant() -> None:
    """A setting that is not a secret has no _FILE variant: it is reported as unknown."""
    assert unknown_names({"CONSENTRY_PORT_FILE": "/run/secrets/port"}) != []


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    """An unreadable _FILE is refused with the variable and the path."""
    missing = tmp_path / "nope"
    with pytest.raises(SettingsError, match=f"CONSENTRY_KEK_FILE.*{missing}"):
        Settings.from_env({"CONSENTRY_KEK_FILE": str(missing)})


def test_value_and_file_together_are_refused(tmp_path: Path) -> None:
    """Setting both CONSENTRY_KEK and CONSENTRY_KEK_FILE is ambiguous, so it is refused."""
    secret = tmp_path / "kek"
    secret.write_text("a")
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"CONSENTRY_KEK": "b", "CONSENTRY_KEK_FILE": str(secret)})


def test_config_file_sets_values(tmp_path: Path) -> None:
    """A TOML settings file sets fields by their lower-case names, typed."""
    config = tmp_path / "consentry.toml"
    config.write_text('port = 9001\nlog_json = false\ndata_dir = "/srv/consentry"\n')
    settings = Settings.load({}, config=config)
    assert (settings.port, settings.log_json, settings.data_dir) == (
        9001,
        False,
        Path("/srv/consentry"),
    )


def test_precedence_flags_then_env_then_file(tmp_path: Path) -> None:
    """Flags beat the environment, which beats the file, which beats the defaults."""
    config = tmp_path / "consentry.toml"
    config.write_text('port = 9001\nhost = "10.0.0.1"\nlog_level = "debug"\n')
    env = {"CONSENTRY_PORT": "9002", "CONSENTRY_HOST": "10.0.0.2"}
    settings = Settings.load(env, config=config, host="10.0.0.3")
    assert (settings.host, settings.port, settings.log_level) == ("10.0.0.3", 9002, "debug")


def test_config_file_named_by_the_environment(tmp_path: Path) -> None:
    """CONSENTRY_CONFIG names the settings file when --config is not given."""
    config = tmp_path / "consentry.toml"
    config.write_text("port = 9003\n")
    assert Settings.load({"CONSENTRY_CONFIG": str(config)}).port == 9003


def test_unknown_key_in_config_file_is_an_error(tmp_path: Path) -> None:
    """An unknown key in the settings file names the file, the key and the allowed keys."""
    config = tmp_path / "consentry.toml"
    config.write_text("prot = 9001\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load({}, config=config)
    text = str(caught.value)
    assert str(config) in text and "prot" in text and "did you mean port" in text
    assert "export_link_ttl_seconds" in text  # the allowed keys are listed


def test_wrong_type_in_config_file_is_an_error(tmp_path: Path) -> None:
    """A value of the wrong type in the settings file names the file and the key."""
    config = tmp_path / "consentry.toml"
    config.write_text('port = "eighty"\n')
    with pytest.raises(SettingsError, match=f"{config}: port"):
        Settings.load({}, config=config)


@pytest.mark.parametrize("field", SETTING_FIELDS, ids=lambda f: f.name)
def test_every_field_has_help(field: dataclasses.Field[object]) -> None:
    """Each setting carries a one-line help text for `consentry settings` and the README."""
    text = field.metadata.get("help", "")
    assert text and "\n" not in text, (
        f'give Settings.{field.name} a help text: field(default=..., metadata=about("..."))'
    )


def test_readme_lists_every_setting() -> None:
    """The README's settings table is exactly the one `consentry settings` prints."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", readme, re.S)
    assert found, "README.md needs the settings table between its settings markers"
    assert found.group(1).strip() == settings_table().strip(), (
        "README settings table is stale: paste the output of `consentry settings` between"
        " the <!-- settings:start --> and <!-- settings:end --> markers"
    )
