"""A plugin declares its settings (`register_settings`); the host reads them at start from the
environment (`CONSENTRY_<PLUGIN>_<NAME>`, `_FILE` for a secret) or the settings file's
`[<plugin>]` table, refuses a bad value with a message naming where it came from, and hands
them to the plugin as `context.settings` (and to `register_channels`)."""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import consentry_email
import pytest

from consentry.host.manager import Plugins
from consentry.plugins import Channel, Message, Setting, hookimpl
from consentry.settings import PluginSources, Settings, SettingsError
from consentry.testing import running_service

DECLARED = (
    Setting("greeting", str, "hello", "what to say"),
    Setting("retries", int, 3, "how often to try"),
    Setting("loud", bool, False, "shout"),
    Setting("token", str, "", "a secret", secret=True),
)
DEFAULTS = {"greeting": "hello", "retries": 3, "loud": False, "token": ""}


async def _send(message: Message) -> str:
    return "sent"


def _hello(declared: tuple[Setting, ...] = DECLARED) -> tuple[str, types.ModuleType]:
    """A plugin `hello` declaring `declared`; its `chat` channel is ready when it is loud."""
    module = types.ModuleType("test_plugin_hello")

    def register_settings(register: Callable[[Setting], None]) -> None:
        for setting in declared:
            register(setting)

    def register_channels(register: Callable[[Channel], None], settings: Mapping[str, Any]) -> None:
        register(Channel("chat", _send, ready=lambda: bool(settings.get("loud"))))

    module.register_settings = hookimpl(register_settings)  # type: ignore[attr-defined]
    module.register_channels = hookimpl(register_channels)  # type: ignore[attr-defined]
    return "hello", module


def _read(env: Mapping[str, str] | None = None, config: Path | None = None) -> dict[str, Any]:
    settings = Settings.load(env or {}, config)
    return Plugins.of(_hello(), sources=settings.plugin_sources).settings["hello"]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "consentry.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set() -> None:
    assert _read() == DEFAULTS


def test_from_the_environment_converted_to_each_kind(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n", encoding="utf-8")
    env = {
        "CONSENTRY_HELLO_GREETING": "hi",
        "CONSENTRY_HELLO_RETRIES": "5",
        "CONSENTRY_HELLO_LOUD": "yes",
        "CONSENTRY_HELLO_TOKEN_FILE": str(secret),
    }
    assert _read(env) == {"greeting": "hi", "retries": 5, "loud": True, "token": "s3cret"}


def test_from_the_settings_file_beside_core_settings(tmp_path: Path) -> None:
    """The plugin's `[hello]` table, in the same file as core keys; the environment wins."""
    secret = tmp_path / "token"
    secret.write_text("from-file", encoding="utf-8")
    config = _toml(
        tmp_path,
        f'port = 9000\n\n[hello]\ngreeting = "hey"\nretries = 7\nloud = true\n'
        f'token_file = "{secret}"\n',
    )
    assert Settings.load({}, config).port == 9000
    assert _read({}, config) == {
        "greeting": "hey",
        "retries": 7,
        "loud": True,
        "token": "from-file",
    }
    assert _read({"CONSENTRY_HELLO_RETRIES": "1"}, config)["retries"] == 1


def test_a_bad_value_in_the_environment_stops_the_start() -> None:
    with pytest.raises(SettingsError, match=r"CONSENTRY_HELLO_RETRIES: 'many' is not a whole"):
        _read({"CONSENTRY_HELLO_RETRIES": "many"})
    with pytest.raises(SettingsError, match=r"CONSENTRY_HELLO_LOUD: 'maybe' is not true or false"):
        _read({"CONSENTRY_HELLO_LOUD": "maybe"})


def test_a_bad_value_or_an_unknown_key_in_the_file_stops_the_start(tmp_path: Path) -> None:
    config = _toml(tmp_path, '[hello]\nretries = "lots"\n')
    with pytest.raises(SettingsError, match=r"consentry.toml: \[hello\] retries: 'lots' is not"):
        _read({}, config)
    config = _toml(tmp_path, "[hello]\nretry = 2\n")
    with pytest.raises(SettingsError, match=r"unknown key 'retry' \(did you mean retries\?\)"):
        _read({}, config)


def test_a_secret_from_both_its_variable_and_its_file_is_refused(tmp_path: Path) -> None:
    env = {"CONSENTRY_HELLO_TOKEN": "a", "CONSENTRY_HELLO_TOKEN_FILE": str(tmp_path / "t")}
    with pytest.raises(SettingsError, match="CONSENTRY_HELLO_TOKEN or CONSENTRY_HELLO_TOKEN_FILE"):
        _read(env)


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        # `prefix="plugin"` + `timeout_seconds` would be CONSENTRY_PLUGIN_TIMEOUT_SECONDS
        (
            (Setting("timeout_seconds", float, 1.0, prefix="plugin"),),
            "'timeout_seconds' would be CONSENTRY_PLUGIN_TIMEOUT_SECONDS, a core setting",
        ),
        ((Setting("retries", int, 1), Setting("retries", int, 2)), "'retries' is declared twice"),
        ((Setting("when", list, []),), "'when' is a <class 'list'>, not one of str, int"),
        ((Setting("a-b"),), "'a-b' is not a name"),
    ],
)
def test_a_bad_declaration_stops_loading(declared: tuple[Setting, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"plugin hello: setting {problem}")):
        Plugins.of(_hello(declared), sources=PluginSources(env={}))


def test_register_channels_receives_the_settings() -> None:
    quiet = Plugins.of(_hello(), sources=PluginSources(env={}))
    loud = Plugins.of(_hello(), sources=PluginSources(env={"CONSENTRY_HELLO_LOUD": "1"}))
    assert not quiet.registry.channels["chat"][1].can_send()
    assert loud.registry.channels["chat"][1].can_send()


async def test_the_plugin_reads_them_as_context_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a running service the settings come from the process environment, read at start."""
    monkeypatch.setenv("CONSENTRY_HELLO_GREETING", "moin")
    async with running_service(_hello(), tmp_path=tmp_path) as service:
        monkeypatch.setenv("CONSENTRY_HELLO_GREETING", "changed after the start")
        assert service.context("hello").settings == {**DEFAULTS, "greeting": "moin"}
        with pytest.raises(TypeError):
            service.context("hello").settings["greeting"] = "set by the plugin"  # type: ignore[index]


def test_the_email_plugin_keeps_its_smtp_variables(tmp_path: Path) -> None:
    """CONSENTRY_SMTP_* as before (now read and checked at start), or the `[smtp]` table."""

    def email(env: Mapping[str, str], config: Path | None = None) -> Plugins:
        settings = Settings.load(env, config)
        return Plugins.of(("email", consentry_email), sources=settings.plugin_sources)

    def ready(plugins: Plugins) -> bool:
        return plugins.registry.channels["email"][1].can_send()

    assert not ready(email({}))
    assert ready(email({"CONSENTRY_SMTP_HOST": "mx.example.com"}))
    assert email({"CONSENTRY_SMTP_PORT": "2525"}).settings["email"]["port"] == 2525
    assert ready(email({}, _toml(tmp_path, '[smtp]\nhost = "mx.example.com"\n')))
    with pytest.raises(SettingsError, match="CONSENTRY_SMTP_PORT: 'smtp' is not a whole number"):
        email({"CONSENTRY_SMTP_PORT": "smtp"})
