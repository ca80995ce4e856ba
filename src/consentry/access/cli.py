"""`consentry keys ...`: API keys from the command line, straight on the data store.

The way back in when no admin key is left: whoever can run the command on the data store can
mint a key, so nothing here asks for one. Every change is audited with the actor `system:cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from consentry.core.principals import Scope
from consentry.settings import Settings

if TYPE_CHECKING:
    from consentry.access.keys import ApiKeyInfo
    from consentry.core.runtime import Core

HELP = """\
Create, list and revoke API keys on the data store directly (no running service, no key
needed): the way back in when every admin key is lost or revoked. A new key is printed once, on
standard output; only its hash is stored. Changes are audited as actor system:cli.

Exit codes: 0 done; 1 refused (unknown key, last admin key without --force); 2 usage error."""


def add_commands(sub: Any) -> None:
    keys = sub.add_parser(
        "keys",
        help="create, list and revoke API keys (recovery when no admin key is left)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key and print it once (standard output)")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[s.value for s in Scope],
        help="a scope the key gets; repeat for several",
    )
    create.add_argument("--name", required=True, help="what the key is for (1-200 characters)")
    ksub.add_parser("list", help="every key: id, name, scopes, who created it, active or revoked")
    revoke = ksub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id", help="the key's id (the part after ck_)")
    revoke.add_argument(
        "--force", action="store_true", help="revoke even the last active admin key"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_keys(args, settings))


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from consentry.access import keys as access
    from consentry.boot import close_core, open_core
    from consentry.core.errors import ServiceError
    from consentry.core.principals import CLI

    core = await open_core(settings, create=False)  # recovery works on the real data only
    try:
        if args.keys_command == "create":
            new = await access.create_key(core, args.name, args.scope, CLI)
            print(new.key)
            print(
                f"created API key {new.info.id} ({', '.join(new.info.scopes)}); it is shown"
                " once, here, and only its hash is stored: keep it now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            keys = await _all_keys(core)
            if keys:
                print(_table(keys))
            else:
                print("no keys", file=sys.stderr)
        else:
            done = await access.revoke_key(core, args.id, CLI, force=args.force)
            print(f"revoked API key {done.id} ({done.name})", file=sys.stderr)
        return 0
    except ServiceError as exc:
        hint = " (or revoke it anyway with --force)" if "last active admin" in exc.detail else ""
        print(exc.detail + hint, file=sys.stderr)
        return 1
    finally:
        await close_core(core)


async def _all_keys(core: Core) -> list[ApiKeyInfo]:
    from consentry.access import keys as access

    keys: list[ApiKeyInfo] = []
    cursor = None
    while True:
        page = await access.list_keys(core, cursor=cursor, limit=100)
        keys += page.items
        if page.next_cursor is None:
            return keys
        cursor = page.next_cursor


def _table(keys: list[ApiKeyInfo]) -> str:
    rows = [("ID", "NAME", "SCOPES", "CREATED", "BY", "STATE")]
    for k in keys:
        state = "active" if k.revoked_at is None else f"revoked {_minute(k.revoked_at)}"
        rows.append(
            (k.id, _cell(k.name), ",".join(k.scopes), _minute(k.created_at), k.created_by, state)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cell(text: str) -> str:
    """A name as one table cell: one that holds line breaks or other controls is quoted."""
    return text if text.isprintable() else repr(text)


def _minute(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")
