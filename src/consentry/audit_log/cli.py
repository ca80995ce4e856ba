"""`consentry audit ...`: verify the log (database or export file), sign, export, rotate keys."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from consentry.audit.checkpoints import Checkpoint
from consentry.audit.verify import Report, verify_export
from consentry.core.opener import run_on_core
from consentry.core.progress import Progress
from consentry.crypto.signing import KeyRing, SignatureError
from consentry.storage.files import open_private

if TYPE_CHECKING:
    from consentry.core.opener import Opener
    from consentry.core.runtime import Core

SAMPLE = 10_000  # checkpoints whose signature and root are checked by default


@click.group(short_help="verify, checkpoint, export the audit log; rotate keys")
def audit() -> None:
    """Verify, checkpoint and export the audit log; write its public keys; rotate the key."""


@audit.command(short_help="verify the chain in the database, or an export file offline")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(path_type=Path),
    help="JWK Set (GET /.well-known/jwks.json), JWK or PEM; required with FILE."
    " For the database, default: the keys the database publishes",
)
@click.option(
    "--all-checkpoints",
    is_flag=True,
    help=f"check every checkpoint, not the latest plus a sample of {SAMPLE:,}",
)
@click.option("--quiet", is_flag=True, help="no progress lines")
@click.option(
    "--workers",
    type=int,
    help="processes for a database of 400,000 entries or more (default: one per core;"
    " 1: in process)",
)
@click.pass_obj
def verify(
    opener: Opener,
    file: Path | None,
    public_key: Path | None,
    all_checkpoints: bool,
    quiet: bool,
    workers: int | None,
) -> int:
    """Verify the audit log.

    Without FILE: the database named by the settings. Every entry's hash and link is
    recomputed, the Merkle tree is rebuilt, and its root is compared with the signed
    checkpoints. With FILE: a JSONL export, offline (no database, no service), with
    --public-key only.

    Exit codes: 0 verified; 1 broken (the first bad sequence number is named); 2 usage error;
    3 unverifiable (entries after the last signed checkpoint, or no checkpoint at all).
    """
    if file is not None:
        return _verify_file(file, public_key, quiet=quiet)
    return asyncio.run(
        _verify_database(opener, public_key, quiet=quiet, every=all_checkpoints, workers=workers)
    )


def _progress(total: int | None, quiet: bool) -> Progress:
    """Entries so far, of how many, and the rate."""

    def describe(done: int, rate: float) -> str:
        share = f" of {total:,} ({done / total:.0%})" if total else ""
        return f"  {done:,} entries{share}, {rate:,.0f}/s"

    return Progress(total, describe, quiet=quiet)


def _load_keys(path: Path) -> KeyRing:
    try:
        return KeyRing.load(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror}") from None
    except SignatureError as exc:
        raise SystemExit(f"{path}: {exc}") from None


def _print(report: Report, progress: Progress) -> int:
    print(report.summary())
    seconds = progress.seconds
    rate = report.entries / max(seconds, 1e-9)
    print(f"({seconds:.1f} s, {rate:,.0f} entries/s)", file=sys.stderr)
    return report.exit_code


def _verify_file(path: Path, key_path: Path | None, *, quiet: bool) -> int:
    if key_path is None:
        print(
            "verifying a file needs --public-key (save GET /.well-known/jwks.json,"
            " or run `consentry audit keys --output keys.json`)",
            file=sys.stderr,
        )
        return 2
    keys = _load_keys(key_path)
    try:
        with path.open("rb") as handle, _progress(None, quiet) as progress:
            report = verify_export(handle, keys, progress=progress)
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    return _print(report, progress)


def sample(checkpoints: list[Checkpoint], limit: int) -> list[Checkpoint]:
    """The latest checkpoint plus up to `limit - 1` others spread evenly over the log."""
    if len(checkpoints) <= limit:
        return checkpoints
    step = len(checkpoints) / (limit - 1)
    picked = {
        checkpoints[int(i * step)].tree_size: checkpoints[int(i * step)] for i in range(limit - 1)
    }
    picked[checkpoints[-1].tree_size] = checkpoints[-1]
    return sorted(picked.values(), key=lambda c: c.tree_size)


async def _verify_database(
    opener: Opener, key_path: Path | None, *, quiet: bool, every: bool, workers: int | None
) -> int:
    from consentry.audit_log.tree import all_checkpoints, key_ring
    from consentry.audit_log.verify import verify_database

    async with opener.database() as db:  # verifying needs no secret
        head = await db.fetchrow("SELECT seq FROM audit_head WHERE id = 1")
        assert head is not None, "made with the tables"
        keys = _load_keys(key_path) if key_path else await key_ring(db)
        found = await all_checkpoints(db)
        chosen = found if every else sample(found, SAMPLE)
        if len(chosen) < len(found):
            print(
                f"checking {len(chosen):,} of {len(found):,} checkpoints"
                " (the latest and an even sample; --all-checkpoints for every one)",
                file=sys.stderr,
            )
        if key_path is None:
            print(
                "using the public keys stored in the database (--public-key to pin them)",
                file=sys.stderr,
            )
        with _progress(int(head["seq"]), quiet) as progress:
            report = await verify_database(
                db,
                opener.database_url,
                chosen,
                keys,
                head_seq=int(head["seq"]),
                progress=progress,
                workers=workers,
            )
        return _print(report, progress)


# -- commands that run the core ----------------------------------------------------------------


@audit.command(short_help="sign a checkpoint now and print it")
@click.pass_obj
def checkpoint(opener: Opener) -> int:
    """Sign a checkpoint now and print it (JSON)."""

    async def run(core: Core) -> None:
        print(json.dumps((await core.checkpointer.checkpoint()).to_json(), indent=2))

    return run_on_core(opener, run)


def _iso(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None


@audit.command(short_help="export entries (JSONL verifies offline) to a file")
@click.option("--output", type=click.Path(path_type=Path), required=True)
@click.option("--format", "form", type=click.Choice(("jsonl", "csv")), default="jsonl")
@click.option("--customer", help="external id of a customer")
@click.option("--actor")
@click.option("--action", help="e.g. consent.recorded, or consent.*")
@click.option("--purpose")
@click.option("--since", callback=_iso, help="ISO 8601 date or time")
@click.option("--until", callback=_iso, help="ISO 8601 date or time")
@click.pass_obj
def export(
    opener: Opener,
    output: Path,
    form: Literal["jsonl", "csv"],
    customer: str | None,
    actor: str | None,
    action: str | None,
    purpose: str | None,
    since: datetime | None,
    until: datetime | None,
) -> int:
    """Export entries to a file: a JSONL export verifies offline (`audit verify FILE`)."""

    async def run(core: Core) -> None:
        from consentry import customers
        from consentry.audit_log import browse as audit_log
        from consentry.core.principals import SYSTEM

        subject = (await customers.resolve(core, customer))[0] if customer else None
        flt = audit_log.AuditFilter(subject, actor, action, purpose, since, until)
        result = await audit_log.export(core, flt, form, SYSTEM)
        count = await _write(output, result.lines)
        print(
            f"wrote {output}: {result.header['count']:,} entries,"
            f" checkpoint at size {result.checkpoint.tree_size} ({count:,} bytes)",
            file=sys.stderr,
        )

    return run_on_core(opener, run)


@audit.command("keys", short_help="write the public keys (JWK Set) for offline checks")
@click.option("--output", type=click.Path(path_type=Path), help="default: standard output")
@click.pass_obj
def public_keys(opener: Opener, output: Path | None) -> int:
    """Write the public keys (JWK Set) that verify checkpoints and exports offline."""

    async def run(core: Core) -> None:
        from consentry.audit_log import tree as audit_tree

        text = json.dumps((await audit_tree.key_ring(core.db)).jwks(), indent=2) + "\n"
        if output:
            output.write_text(text)
            print(f"wrote {output}", file=sys.stderr)
        else:
            sys.stdout.write(text)

    return run_on_core(opener, run)


@audit.command(
    "rotate-key",
    short_help="new signing key; the old one signs a last checkpoint and stays published",
)
@click.pass_obj
def rotate_key(opener: Opener) -> int:
    """A new signing key: the old one signs a last checkpoint, its private half is destroyed
    and its public half stays published."""

    async def run(core: Core) -> None:
        from consentry.audit_log import tree as audit_tree
        from consentry.core.principals import SYSTEM

        new = await audit_tree.rotate_key(core.checkpointer, core.settings, SYSTEM.actor)
        print(f"new signing key {new.key_id}; restart running instances to use it")

    return run_on_core(opener, run)


async def _write(path: Path, lines: Any) -> int:
    written = 0
    with open_private(path) as handle:
        async for chunk in lines:
            handle.write(chunk)
            written += len(chunk)
    return written
