"""`consentry`: the command line. The service's own commands are here; each area brings its own
(`access.cli`, `audit_log.cli`, `dsr.cli`, `ledger.cli`), and plugins theirs (`register_commands`).
Every command gets an `Opener` (click's `ctx.obj`) to reach the data with the settings."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from consentry.access.cli import keys
from consentry.audit_log.cli import audit
from consentry.dsr.cli import erase, requests
from consentry.host.manager import ENTRY_POINT_GROUP
from consentry.ledger.cli import receipt
from consentry.plugins.commands import Body
from consentry.settings import NoData, Settings, SettingsError, settings_table, unknown_names

if TYPE_CHECKING:
    from consentry.core.runtime import Core
    from consentry.host.manager import Plugins
    from consentry.storage.database import Database

DESCRIPTION = """Consentry: consent ledger, preferences and audit.

Settings come from CONSENTRY_* environment variables (`consentry settings` lists them), a TOML
file (--config FILE or CONSENTRY_CONFIG) and --data-dir DIR, which go before or after the command.
Commands other than `serve` and `migrate --create` work on existing data only: where there is
none, they say where they looked and exit 2."""

GLOBAL_OPTIONS = (  # (option, metavar, help)
    ("--data-dir", "DIR", "the data folder (default: CONSENTRY_DATA_DIR, or ./data)"),
    ("--config", "FILE", "a TOML settings file; keys are the settings' names in lower case"),
)


class SettingsOpener:
    """The settings, and what a command opens with them: the core, the data store alone, and
    plugin commands with their plugin's context (`core.opener.Opener`, `plugins.CommandHost`)."""

    def __init__(self, settings: Settings, *, plugins: Plugins | None = None) -> None:
        self.settings = settings
        self._plugins = plugins  # None: loaded as the settings say, when first needed

    @property
    def database_url(self) -> str:
        from consentry.boot import database_url

        return database_url(self.settings)

    @asynccontextmanager
    async def core(self, *, create: bool = False) -> AsyncIterator[Core]:
        from consentry.boot import close_core, open_core

        core = await open_core(self.settings, plugins=self._plugins, create=create)
        try:
            yield core
        finally:
            await close_core(core)

    @asynccontextmanager
    async def database(self) -> AsyncIterator[Database]:
        from consentry.boot import missing_data, missing_tables
        from consentry.storage.database import Database

        if problem := missing_data(self.settings, secrets=False):
            raise NoData(problem)
        db = Database(self.database_url)
        await db.start(pool_size=2)
        try:
            if problem := await missing_tables(db):
                raise NoData(problem)
            yield db
        finally:
            await db.close()

    def plugins(self) -> Plugins:
        """The plugins the settings choose, loaded once (only when a command needs them)."""
        from consentry.boot import load_plugins

        if self._plugins is None:
            self._plugins = load_plugins(self.settings)
        return self._plugins

    def plugin_commands(self) -> dict[str, tuple[str, click.Command]]:
        """{name: (plugin, command)} for every command the plugins registered."""
        return self.plugins().registry.commands

    def run_plugin_command(self, command: str, body: Body) -> int:
        owner, _ = self.plugin_commands()[command]
        return asyncio.run(self._run(owner, body))

    async def _run(self, owner: str, body: Body) -> int:
        async with self.core(create=False) as core:  # plugin commands work on existing data
            return await body(core.plugin_context(owner))


def opener_of(ctx: click.Context) -> SettingsOpener:
    root = ctx.find_root()
    if root.obj is None:  # invoked without `main`, e.g. click's test runner
        root.obj = SettingsOpener(Settings.load())
    found: SettingsOpener = root.obj
    return found


class Commands(click.Group):
    """The built-in commands, then the plugins' (loaded only for a name that is not built in,
    or to list them all: plugins never slow down the service's own commands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *sorted(self._plugin_commands(ctx, listing=True))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in (plugin := self._plugin_commands(ctx)):
            found = plugin[cmd_name][1]
        return found

    def _plugin_commands(
        self, ctx: click.Context, *, listing: bool = False
    ) -> dict[str, tuple[str, click.Command]]:
        """Plugins that cannot load (or take a built-in name) fail a command they would run;
        a listing (help, completion) says why once and shows the built-in commands."""
        try:
            found = opener_of(ctx).plugin_commands()
            for name, (owner, command) in found.items():
                if name in self.commands:
                    raise ValueError(f"plugin {owner}: `{name}` is a built-in command")
                with_global_options(command)
        except Exception as exc:  # a plugin's mistake: said, not a traceback
            problem = f"plugins failed to load: {exc}"
            if not listing:
                raise click.ClickException(problem) from exc
            if not ctx.meta.setdefault("consentry.plugins_said", False):
                click.echo(f"consentry: warning: {problem}", err=True)
                ctx.meta["consentry.plugins_said"] = True
            return {}
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        built_in = [(n, c.get_short_help_str(width)) for n, c in self.commands.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(built_in))
        plugin = [
            (name, f"{command.get_short_help_str(width)} (plugin {owner})")
            for name, (owner, command) in sorted(self._plugin_commands(ctx, listing=True).items())
        ]
        if plugin:
            with formatter.section("Plugin commands"):
                formatter.write_dl(plugin)


def with_global_options(command: click.Command) -> None:
    """--data-dir and --config on the command and every subcommand. Their values are read
    before parsing, wherever they stand (`main`): here they are parsed, checked and shown."""
    have = {name for param in command.params for name in param.opts}
    command.params += [
        click.Option([option], metavar=metavar, help=text, expose_value=False)
        for option, metavar, text in GLOBAL_OPTIONS
        if option not in have
    ]
    if isinstance(command, click.Group):
        for child in command.commands.values():
            with_global_options(child)


@click.group(cls=Commands, help=DESCRIPTION)
@click.version_option(package_name="consentry", prog_name="consentry")
def cli() -> None:
    pass


@cli.result_callback()
def _exit(code: int | None) -> None:
    """A command's result is the exit code."""
    click.get_current_context().exit(code or 0)


@cli.command(short_help="start the HTTP service (creates the data folder)")
@click.option("--host", help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8000)")
@click.pass_obj
def serve(opener: SettingsOpener, host: str | None, port: int | None) -> int:
    """Start the HTTP service (creates the data folder, and says so)."""
    from consentry.server import serve as run

    return run(opener.settings, host=host, port=port)


@cli.command(short_help="create or update the database schema")
@click.option("--create", is_flag=True, help="make a new data folder (database, secrets) if none")
@click.pass_obj
def migrate(opener: SettingsOpener, create: bool) -> int:
    """Create or update the database schema; a new data folder (and secrets) only with
    --create."""
    return asyncio.run(_migrate(opener, create=create))


async def _migrate(opener: SettingsOpener, *, create: bool) -> int:
    from consentry.boot import missing_data

    settings = opener.settings
    if not create and (problem := missing_data(settings)):
        raise NoData(problem)
    fresh = not settings.data_dir.exists()
    async with opener.core(create=True) as core:
        pass
    if fresh and settings.data_dir.exists():
        print(f"created a new data folder at {settings.data_dir.resolve()}", file=sys.stderr)
    print(f"schema is up to date ({'postgresql' if core.db.is_postgres else 'sqlite'})")
    return 0


@cli.group(short_help="check or test the policy")
def policy() -> None:
    """Check or test the policy."""


@policy.command("check", short_help="validate a policy file; errors name file and line")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.pass_obj
def policy_check(opener: SettingsOpener, path: Path | None) -> int:
    """Validate a policy file (default: CONSENTRY_POLICY_PATH); errors name file and line."""
    from consentry.policy.loader import PolicyError, load_policy

    path = path or opener.settings.policy_path
    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(loaded.purposes)} purposes, version {loaded.version})")
    return 0


@policy.command("test", short_help="run the policy's test cases")
@click.argument("cases", required=False, type=click.Path(path_type=Path))
@click.option("--policy", type=click.Path(path_type=Path), help="default: CONSENTRY_POLICY_PATH")
@click.pass_obj
def policy_test(opener: SettingsOpener, cases: Path | None, policy: Path | None) -> int:
    """Run the policy's test cases (default: the tests/ beside the policy)."""
    from consentry.policy.cases import format_results, lint_cases, load_cases, run_cases
    from consentry.policy.evaluate import evaluate_case
    from consentry.policy.loader import PolicyError, load_policy

    path = policy or opener.settings.policy_path
    try:
        loaded = load_policy(path)
        found = load_cases(cases or Path(path).parent / "tests")
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    problems = lint_cases(loaded, found)
    for issue in problems:
        print(f"{issue.file}:{issue.line}: {issue.path}: {issue.message}", file=sys.stderr)
    results = run_cases(loaded, found, evaluate_case)
    print(format_results(results))
    return 0 if not problems and all(r.passed for r in results) else 1


@cli.command(short_help="write the OpenAPI document")
@click.option(
    "--output", type=click.Path(path_type=Path), default=Path("openapi/openapi.json"),
    show_default=True,
)  # fmt: skip
@click.option("--check", is_flag=True, help="fail if the file differs from what the app generates")
def openapi(output: Path, check: bool) -> int:
    """Write the OpenAPI document (or check that it is up to date)."""
    document = openapi_document()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != document:
            print(f"{output} is stale: run `consentry openapi`", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document)
    print(f"wrote {output}")
    return 0


@cli.command("plugins", short_help="list the installed plugins: version, hooks, capabilities")
@click.pass_obj
def list_plugins(opener: SettingsOpener) -> int:
    """List the installed plugins: version, hooks, capabilities."""
    try:
        loaded = opener.plugins()
    except Exception as exc:  # a plugin that cannot load: say which and why
        print(f"plugins failed to load: {exc}", file=sys.stderr)
        return 1
    infos = loaded.info()
    if not infos:
        print("no plugins installed (entry-point group 'consentry')")
    for p in infos:
        print(f"{p.name} {p.version}")
        print(f"  capabilities: {', '.join(p.capabilities) or '-'}")
        print(f"  hooks: {', '.join(p.hooks) or '-'}")
    return 0


@cli.command("settings", short_help="list every setting: variable, default, meaning (Markdown)")
def list_settings() -> int:
    """List every setting: variable, default, meaning (a Markdown table)."""
    sys.stdout.write(settings_table())
    return 0


for area in (audit, requests, erase, keys, receipt):
    cli.add_command(area)
with_global_options(cli)


def openapi_document() -> str:
    from consentry.app import create_app
    from consentry.host.manager import first_party
    from consentry.http.openapi_document import document

    # first-party plugins only: the committed document must not depend on what else is installed
    app = create_app(Settings(plugins=",".join(first_party())))
    return json.dumps(document(app), indent=2, sort_keys=True) + "\n"


def global_settings(words: Sequence[str]) -> Settings:
    """The settings, with --data-dir and --config applied wherever they stand."""
    options: list[click.Parameter] = [
        click.Option([option], type=click.Path(path_type=Path)) for option, *_ in GLOBAL_OPTIONS
    ]
    scan = click.Command(
        None,
        params=options,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    try:
        found: dict[str, Any] = scan.make_context("consentry", list(words)).params
    except click.UsageError:  # e.g. --data-dir without a value: the real parse says so
        found = {}
    return Settings.load(config=found.get("config"), data_dir=found.get("data_dir"))


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = global_settings(words)
    except SettingsError as exc:
        print(f"consentry: {exc}", file=sys.stderr)
        return 2
    plugin_names = [ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    for warning in unknown_names(os.environ, namespaces=plugin_names):
        print(f"consentry: warning: {warning}", file=sys.stderr)
    try:
        cli.main(words, prog_name="consentry", obj=SettingsOpener(settings))
    except (NoData, SettingsError) as exc:  # e.g. a plugin's setting, read when it loads
        print(f"consentry: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a message to say, as Python would
            print(exc.code, file=sys.stderr)
            return 1
        return exc.code or 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
