"""`consentry --help` is generated from the commands themselves: it lists every command, the
plugins' too, and each command's own help works; `--version` says the installed version."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner
from pluggy import PluginValidationError

from consentry.cli import SettingsOpener, cli, main
from consentry.host.manager import Plugins
from consentry.plugins import PluginContext, hookimpl, with_context
from consentry.settings import NoData, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
BUILT_IN = {
    "audit", "erase", "keys", "migrate", "openapi", "plugins", "policy", "receipt", "requests",
    "serve", "settings",
}  # fmt: skip


def plugin(name: str, command: click.Command) -> ModuleType:
    """A plugin module named `name` whose register_commands adds `command`."""
    module = ModuleType(name)

    @hookimpl
    def register_commands(group: click.Group) -> None:
        group.add_command(command)

    module.register_commands = register_commands  # type: ignore[attr-defined]
    return module


@click.command("whoami", short_help="say which plugin's context this is")
@click.option("--twice", is_flag=True)
@with_context
async def whoami(context: PluginContext, twice: bool) -> int:
    print(context.plugin * (2 if twice else 1))
    return 7


def opener(tmp_path: Path, *modules: ModuleType) -> SettingsOpener:
    plugins = Plugins.of(*((m.__name__, m) for m in modules))
    return SettingsOpener(Settings(data_dir=tmp_path / "data"), plugins=plugins)


def invoke(
    tmp_path: Path, *args: str, modules: tuple[ModuleType, ...] = ()
) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), obj=opener(tmp_path, *modules))


def groups(
    command: click.Group, ctx: click.Context, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Group]]:
    """Every group of the command line, with the words that reach it."""
    yield path, command
    for name in command.list_commands(ctx):
        child = command.get_command(ctx, name)
        if isinstance(child, click.Group):
            yield from groups(child, ctx, (*path, name))


def test_the_help_lists_every_command(tmp_path: Path) -> None:
    """Each group's --help names each of its commands with its short help, and each command's
    own --help works (exit 0) and offers --data-dir and --config."""
    ctx = click.Context(cli, obj=opener(tmp_path))
    assert set(cli.list_commands(ctx)) == BUILT_IN
    leaves = 0
    for path, group in groups(cli, ctx):
        shown = invoke(tmp_path, *path, "--help")
        assert shown.exit_code == 0, shown.output
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            listed = shown.output.split("\nCommands:\n", 1)[1]
            line = re.search(rf"^  {re.escape(name)} +(.+)$", listed, re.M)
            assert line, f"`consentry {' '.join(path)} --help` does not list {name}"
            assert command.get_short_help_str(30)[:20] in line[1]
            if not isinstance(command, click.Group):
                leaves += 1
                own = invoke(tmp_path, *path, name, "--help")
                assert own.exit_code == 0, own.output
                assert "--data-dir DIR" in own.output and "--config FILE" in own.output
    assert leaves >= 24  # audit 5, requests 8, keys 3, policy 2, receipt 1, and the rest


def test_the_readme_names_every_command() -> None:
    """README's command list names each top-level command (the old hand-drawn help drifted)."""
    section = README.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    missing = {name for name in BUILT_IN if f"consentry {name}" not in section}
    assert not missing, f"README's Commands section misses {sorted(missing)}"


def test_version(tmp_path: Path) -> None:
    done = invoke(tmp_path, "--version")
    assert done.exit_code == 0
    assert done.output == f"consentry, version {metadata.version('consentry')}\n"


def test_a_plugin_command_shows_in_the_help(tmp_path: Path) -> None:
    """A plugin's command is listed under "Plugin commands", with the plugin's name."""
    done = invoke(tmp_path, "--help", modules=(plugin("hello", whoami),))
    assert done.exit_code == 0, done.output
    listed = done.output.split("Plugin commands:", 1)[1]
    assert re.search(
        r"^  whoami +say which plugin's context this is \(plugin hello\)$", listed, re.M
    )
    assert "Plugin commands" not in invoke(tmp_path, "--help").output


def test_a_plugin_command_runs_with_its_plugins_context(tmp_path: Path) -> None:
    """`with_context` opens the core on existing data and hands the command the context of
    the plugin that registered it; its result is the exit code."""
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "migrate", "--create"]) == 0
    done = invoke(tmp_path, "whoami", "--twice", *data, modules=(plugin("hello", whoami),))
    assert done.exit_code == 7, done.output
    assert done.output == "hellohello\n"


def test_a_plugin_command_needs_existing_data(tmp_path: Path) -> None:
    """Where there is no data, a plugin command says where it looked and exits 2; it creates
    nothing."""
    runner = opener(tmp_path, plugin("hello", whoami))
    with pytest.raises(NoData, match="no Consentry data at"):
        cli.main(["whoami"], obj=runner, standalone_mode=False)
    assert not (tmp_path / "data").exists()


def test_a_plugin_cannot_take_a_built_in_name(tmp_path: Path) -> None:
    """A plugin command named like a built-in one fails the plugin commands it would run, with
    why; the help says so once and still lists the built-in commands."""
    modules = (plugin("hello", click.Command("serve")), plugin("other", whoami))
    done = invoke(tmp_path, "whoami", modules=modules)
    assert done.exit_code == 1
    assert "plugins failed to load: plugin hello: `serve` is a built-in command" in done.output
    shown = invoke(tmp_path, "--help", modules=modules)
    assert shown.exit_code == 0, shown.output
    assert shown.stderr.count("`serve` is a built-in command") == 1
    assert "  serve " in shown.stdout and "whoami" not in shown.stdout


def test_two_plugins_cannot_register_the_same_command() -> None:
    with pytest.raises(ValueError, match="command 'whoami' is registered by one and two"):
        Plugins.of(("one", plugin("one", whoami)), ("two", plugin("two", whoami)))


def test_usage_mistakes_exit_2(tmp_path: Path) -> None:
    for args in (["nonsense"], ["audit"], ["keys", "create", "--scope", "root", "--name", "x"]):
        done = invoke(tmp_path, *args)
        assert done.exit_code == 2, (args, done.output)


def test_the_old_register_commands_is_refused_naming_the_plugin() -> None:
    """A plugin still written for `register_commands(register)` (before the click group) stops
    the load with an error naming it, as the guide's changelog says."""
    module = ModuleType("old")

    @hookimpl
    def register_commands(register: object) -> None:
        pass

    module.register_commands = register_commands  # type: ignore[attr-defined]
    with pytest.raises(PluginValidationError, match="Plugin 'old' for hook 'register_commands'"):
        Plugins.of(("old", module))
