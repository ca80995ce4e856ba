"""`consentry keys ...`: API keys from the command line, straight on the data store.

The way back in when no admin key is left: whoever can run the command on the data store can
mint a key, so nothing here asks for one. Every change is audited with the actor `system:cli`.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from consentry.core.opener import run_on_core
from consentry.core.principals import Scope
from consentry.domain.errors import ServiceError

if TYPE_CHECKING:
    from consentry.access.keys import ApiKeyInfo
    from consentry.core.opener import Opener
    from consentry.core.runtime import Core


@click.group(short_help="create, list and revoke API keys (recovery when no admin key is left)")
def keys() -> None:
    """Create, list and revoke API keys on the data store directly (no running service, no key
    needed): the way back in when every admin key is lost or revoked. A new key is printed once,
    on standard output; only its hash is stored. Changes are audited as actor system:cli.

    Exit codes: 0 done; 1 refused (unknown key, last admin key without --force); 2 usage error.
    """


@keys.command(short_help="create a key and print it once (standard output)")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="a scope the key gets; repeat for several",
)
@click.option("--name", required=True, help="what the key is for (1-200 characters)")
@click.pass_obj
def create(opener: Opener, scopes: tuple[str, ...], name: str) -> int:
    """Create a key and print it once, on standard output."""

    async def run(core: Core) -> None:
        from consentry.access import keys as access
        from consentry.core.principals import CLI

        new = await access.create_key(core, name, list(scopes), CLI)
        print(new.key)
        print(
            f"created API key {new.info.id} ({', '.join(new.info.scopes)}); it is shown"
            " once, here, and only its hash is stored: keep it now",
            file=sys.stderr,
        )

    return run_on_core(opener, run, refused=_refused)


@keys.command("list", short_help="every key: id, name, scopes, who created it, active or revoked")
@click.pass_obj
def list_keys(opener: Opener) -> int:
    """Every key: id, name, scopes, who created it, active or revoked."""

    async def run(core: Core) -> None:
        found = await _all_keys(core)
        if found:
            print(_table(found))
        else:
            print("no keys", file=sys.stderr)

    return run_on_core(opener, run, refused=_refused)


@keys.command(short_help="revoke a key at once")
@click.argument("id")
@click.option("--force", is_flag=True, help="revoke even the last active admin key")
@click.pass_obj
def revoke(opener: Opener, id: str, force: bool) -> int:
    """Revoke a key at once. ID is the key's id (the part after ck_)."""

    async def run(core: Core) -> None:
        from consentry.access import keys as access
        from consentry.core.principals import CLI

        done = await access.revoke_key(core, id, CLI, force=force)
        print(f"revoked API key {done.id} ({done.name})", file=sys.stderr)

    return run_on_core(opener, run, refused=_refused)


def _refused(exc: ServiceError) -> str:
    last = "last active admin" in exc.detail
    return exc.detail + (" (or revoke it anyway with --force)" if last else "")


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
