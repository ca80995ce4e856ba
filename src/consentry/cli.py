"""`consentry`: serve, migrate, check and test the policy, write the OpenAPI document."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from consentry.access import cli as keys_cli
from consentry.audit_log import cli as audit_cli
from consentry.dsr import cli as dsr_cli
from consentry.host.manager import ENTRY_POINT_GROUP, Plugins
from consentry.plugins.types import Command
from consentry.settings import NoData, Settings, SettingsError, settings_table, unknown_names

HELP = """Consentry: consent ledger, preferences and audit.

  serve            start the HTTP service          audit verify   check the audit log
  migrate          create or update the schema     audit export   export entries to a file
  policy check     validate the policy             receipt verify check a consent receipt
  policy test      run the policy's test cases     openapi        write the OpenAPI document
  plugins          list the installed plugins      keys           create, list, revoke API keys
  requests         data-subject requests           erase          erase customers (bulk)
  settings         list every setting

Settings come from CONSENTRY_* environment variables (`consentry settings` lists them), a TOML
file (--config FILE or CONSENTRY_CONFIG) and --data-dir DIR, which go before or after the command.
Commands other than `serve` and `migrate --create` work on existing data only: where there is
none, they say where they looked and exit 2."""

GLOBAL_OPTIONS = (  # (option, metavar, help)
    ("--data-dir", "DIR", "the data folder (default: CONSENTRY_DATA_DIR, or ./data)"),
    ("--config", "FILE", "a TOML settings file; keys are the settings' names in lower case"),
)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        settings, rest = _settings(words)
    except SettingsError as exc:
        print(f"consentry: {exc}", file=sys.stderr)
        return 2
    plugin_names = [ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    for warning in unknown_names(os.environ, namespaces=plugin_names):
        print(f"consentry: warning: {warning}", file=sys.stderr)
    parser, sub = _parser()
    plugin_word = bool(rest) and not rest[0].startswith("-") and rest[0] not in sub.choices
    commands = _plugin_commands(sub, settings) if plugin_word else {}
    _add_global_options(parser, top=True)
    args = parser.parse_args(words)
    try:
        return _run(args, settings, commands)
    except NoData as exc:
        print(f"consentry: {exc}", file=sys.stderr)
        return 2


def _settings(words: list[str]) -> tuple[Settings, list[str]]:
    """Settings with the global options applied wherever they stand; the other words."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for option, _, _ in GLOBAL_OPTIONS:
        pre.add_argument(option, type=Path)
    known, rest = pre.parse_known_args(words)
    return Settings.load(config=known.config, data_dir=known.data_dir), rest


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--data-dir and --config on the command and on every subcommand (read by `_settings`)."""
    for option, metavar, text in GLOBAL_OPTIONS:
        parser.add_argument(
            option, type=Path, metavar=metavar, help=text,
            default=None if top else argparse.SUPPRESS,
        )  # fmt: skip
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_global_options(child, top=False)


def _parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(
        prog="consentry", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP service (creates the data folder)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    migrate = sub.add_parser("migrate", help="create or update the database schema")
    migrate.add_argument(
        "--create", action="store_true", help="make a new data folder (database, secrets) if none"
    )
    policy = sub.add_parser("policy", help="check or test the policy")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    check = psub.add_parser("check", help="validate a policy file; errors name file and line")
    check.add_argument("path", nargs="?", type=Path, help="default: CONSENTRY_POLICY_PATH")
    test = psub.add_parser("test", help="run the policy's test cases")
    test.add_argument("cases", nargs="?", type=Path, help="default: the tests/ beside the policy")
    test.add_argument("--policy", type=Path, help="default: CONSENTRY_POLICY_PATH")
    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", type=Path, default=Path("openapi/openapi.json"))
    openapi.add_argument(
        "--check", action="store_true", help="fail if the file differs from what the app generates"
    )
    audit_cli.add_commands(sub)
    dsr_cli.add_commands(sub)
    keys_cli.add_commands(sub)
    sub.add_parser("plugins", help="list the installed plugins: version, hooks, capabilities")
    sub.add_parser("settings", help="list every setting: variable, default, meaning (Markdown)")
    receipt = sub.add_parser("receipt", help="verify a signed consent receipt offline")
    rsub = receipt.add_subparsers(dest="receipt_command", required=True)
    rverify = rsub.add_parser("verify", help="check a receipt (JWS) with the public key only")
    rverify.add_argument("file", type=Path, help="a file holding the receipt's compact JWS")
    rverify.add_argument(
        "--public-key", type=Path, required=True, help="JWK Set, JWK or PEM public key(s)"
    )
    return parser, sub


def _run(
    args: argparse.Namespace,
    settings: Settings,
    commands: dict[str, tuple[Plugins, str, Command]],
) -> int:
    if args.command in commands:
        return asyncio.run(_run_plugin_command(settings, commands[args.command], args))
    if args.command == "serve":
        from consentry.server import serve as run

        return run(settings, host=args.host, port=args.port)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings, create=args.create))
    if args.command == "policy":
        return _policy(args, settings)
    if args.command == "audit":
        return audit_cli.run(args, settings)
    if args.command in ("requests", "erase"):
        return dsr_cli.run(args, settings)
    if args.command == "keys":
        return keys_cli.run(args, settings)
    if args.command == "plugins":
        return _plugins(settings)
    if args.command == "settings":
        sys.stdout.write(settings_table())
        return 0
    if args.command == "receipt":
        from consentry.ledger.receipt_cli import verify_receipt

        code, message = verify_receipt(args.file, args.public_key)
        print(message, file=sys.stdout if code == 0 else sys.stderr)
        return code
    return _openapi(args.output, check=args.check)


def _plugin_commands(sub: Any, settings: Settings) -> dict[str, tuple[Plugins, str, Command]]:
    """Commands plugins contribute; loaded only when the first word is not a built-in command,
    so plugins never slow down the service's own commands."""
    from consentry.boot import load_plugins

    plugins = load_plugins(settings)
    found = {}
    for name, (owner, command) in plugins.registry.commands.items():
        command.configure(sub.add_parser(name, help=f"{command.help} (plugin {owner})"))
        found[name] = (plugins, owner, command)
    return found


async def _run_plugin_command(
    settings: Settings, found: tuple[Plugins, str, Command], args: argparse.Namespace
) -> int:
    from consentry.boot import close_core, open_core

    plugins, owner, command = found
    core = await open_core(settings, plugins=plugins, create=False)
    try:
        return await command.run(args, core.plugin_context(owner))
    finally:
        await close_core(core)


async def _migrate(settings: Settings, *, create: bool) -> int:
    """Creates or updates the tables; a new data folder (and secrets) only with --create."""
    from consentry.boot import close_core, missing_data, open_core

    if not create and (problem := missing_data(settings)):
        raise NoData(problem)
    fresh = not settings.data_dir.exists()
    core = await open_core(settings)
    await close_core(core)
    if fresh and settings.data_dir.exists():
        print(f"created a new data folder at {settings.data_dir.resolve()}", file=sys.stderr)
    print(f"schema is up to date ({'postgresql' if core.db.is_postgres else 'sqlite'})")
    return 0


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    from consentry.policy.cases import format_results, lint_cases, load_cases, run_cases
    from consentry.policy.evaluate import evaluate_case
    from consentry.policy.loader import PolicyError, load_policy

    path = getattr(args, "path", None) or getattr(args, "policy", None) or settings.policy_path
    try:
        policy = load_policy(path)
        if args.policy_command == "check":
            print(f"{path}: ok ({len(policy.purposes)} purposes, version {policy.version})")
            return 0
        cases = load_cases(args.cases or Path(path).parent / "tests")
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    problems = lint_cases(policy, cases)
    for issue in problems:
        print(f"{issue.file}:{issue.line}: {issue.path}: {issue.message}", file=sys.stderr)
    results = run_cases(policy, cases, evaluate_case)
    print(format_results(results))
    return 0 if not problems and all(r.passed for r in results) else 1


def _plugins(settings: Settings) -> int:
    from consentry.boot import load_plugins

    try:
        plugins = load_plugins(settings)
    except Exception as exc:  # a plugin that cannot load: say which and why
        print(f"plugins failed to load: {exc}", file=sys.stderr)
        return 1
    infos = plugins.info()
    if not infos:
        print("no plugins installed (entry-point group 'consentry')")
    for p in infos:
        print(f"{p.name} {p.version}")
        print(f"  capabilities: {', '.join(p.capabilities) or '-'}")
        print(f"  hooks: {', '.join(p.hooks) or '-'}")
    return 0


def openapi_document() -> str:
    from consentry.app import create_app
    from consentry.host.manager import first_party
    from consentry.http.openapi_document import document

    # first-party plugins only: the committed document must not depend on what else is installed
    app = create_app(Settings(plugins=",".join(first_party())))
    return json.dumps(document(app), indent=2, sort_keys=True) + "\n"


def _openapi(output: Path, *, check: bool) -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
