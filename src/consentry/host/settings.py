"""A plugin's own settings: declared with `register_settings`, read once at start, checked.

Each `Setting` is read like a core setting (same converters, same `_FILE` rule for secrets, the
environment before the file): from `CONSENTRY_<PREFIX>_<NAME>`, where the prefix is the plugin's
name unless the declaration names another (the email plugin keeps `SMTP`), or from the settings
file's `[<prefix>]` table, key `<name>`. A value that does not convert, or a key in the plugin's
table that it does not declare, stops the start with a `SettingsError` naming where it came from.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from consentry.plugins.types import Setting
from consentry.settings import (
    PREFIX,
    PluginSources,
    SettingsError,
    Spec,
    _read_secret,
    known_names,
)

KINDS = (str, int, float, bool)


def prefix_of(plugin: str, setting: Setting) -> str:
    """The word after `CONSENTRY_` (upper case) and the file's table name (lower case)."""
    return (setting.prefix or plugin).lower()


def _declared(plugin: str, declared: Iterable[Setting]) -> list[Setting]:
    seen: set[str] = set()
    checked = []
    core = {PREFIX + name.upper() for name in known_names()}
    for s in declared:
        variable = f"{PREFIX}{prefix_of(plugin, s).upper()}_{s.name.upper()}"
        problem = (
            "is not a name (letters, digits, _)" if not s.name.isidentifier()
            else "is declared twice" if s.name in seen
            else f"is a {s.kind!r}, not one of {', '.join(k.__name__ for k in KINDS)}"
            if s.kind not in KINDS
            else f"would be {variable}, a core setting" if variable in core
            else ""
        )  # fmt: skip
        if problem:
            raise ValueError(f"plugin {plugin}: setting {s.name!r} {problem}")
        seen.add(s.name)
        checked.append(s)
    return checked


def _file_value(s: Setting, table: dict[str, Any], where: str) -> tuple[object, str] | None:
    if s.name in table:
        return table[s.name], f"{where} {s.name}"
    if s.secret and f"{s.name}_file" in table:
        key = f"{s.name}_file"
        return _read_secret(Path(str(table[key])), f"{where} {key}"), f"{where} {key}"
    return None


def _check_table(plugin: str, table: dict[str, Any], declared: list[Setting], where: str) -> None:
    allowed = {s.name for s in declared} | {f"{s.name}_file" for s in declared if s.secret}
    for key in sorted(set(table) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SettingsError(
            f"{where} unknown key {key!r}{hint}; plugin {plugin} reads {', '.join(sorted(allowed))}"
        )


def read_plugin_settings(
    plugin: str, declared: Iterable[Setting], sources: PluginSources
) -> dict[str, Any]:
    """The plugin's settings by name: the environment, else the file, else the default."""
    settings = _declared(plugin, declared)
    env = os.environ if sources.env is None else sources.env
    values: dict[str, Any] = {}
    for prefix in sorted({prefix_of(plugin, s) for s in settings}):
        raw_table = sources.tables.get(prefix, {})
        table = raw_table if isinstance(raw_table, dict) else {}
        where = f"{sources.file}: [{prefix}]"
        _check_table(plugin, table, [s for s in settings if prefix_of(plugin, s) == prefix], where)
        for s in (s for s in settings if prefix_of(plugin, s) == prefix):
            spec = Spec(s.name, s.kind, s.help, "", s.default, s.secret)
            variable = f"{PREFIX}{prefix.upper()}_{s.name.upper()}"
            raw = env.get(variable)
            path = env.get(variable + "_FILE") if s.secret else None
            if raw is not None and path is not None:
                raise SettingsError(f"set {variable} or {variable}_FILE, not both")
            if path is not None:
                raw = _read_secret(Path(path), variable + "_FILE")
            found = (raw, variable) if raw is not None else _file_value(s, table, where)
            values[s.name] = s.default if found is None else spec.convert(*found)
    return values
