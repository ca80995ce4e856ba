"""`consentry audit ...`: verify the log (database or export file), sign, export, rotate keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from consentry.audit.checkpoints import Checkpoint
from consentry.audit.verify import Report, verify_export
from consentry.crypto.signing import KeyRing, SignatureError
from consentry.settings import NoData, Settings
from consentry.storage.files import open_private

VERIFY_HELP = """Verify the audit log.

Without FILE: the database named by the settings. Every entry's hash and link is recomputed,
the Merkle tree is rebuilt, and its root is compared with the signed checkpoints.
With FILE: a JSONL export, offline (no database, no service), with --public-key only.

Exit codes: 0 verified; 1 broken (the first bad sequence number is named); 2 usage error;
3 unverifiable (entries after the last signed checkpoint, or no checkpoint at all)."""

SAMPLE = 10_000  # checkpoints whose signature and root are checked by default


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify, checkpoint, export the audit log; rotate keys")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    verify = asub.add_parser(
        "verify",
        help="verify the chain in the database, or an export file offline",
        description=VERIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("file", nargs="?", type=Path, help="a JSONL export (default: database)")
    verify.add_argument(
        "--public-key",
        type=Path,
        help="JWK Set (GET /.well-known/jwks.json), JWK or PEM; required with FILE."
        " For the database, default: the keys the database publishes",
    )
    verify.add_argument(
        "--all-checkpoints",
        action="store_true",
        help=f"check every checkpoint, not the latest plus a sample of {SAMPLE:,}",
    )
    verify.add_argument("--quiet", action="store_true", help="no progress lines")
    verify.add_argument(
        "--workers",
        type=int,
        help="processes for a database of 400,000 entries or more (default: one per core;"
        " 1: in process)",
    )
    asub.add_parser("checkpoint", help="sign a checkpoint now and print it")
    export = asub.add_parser("export", help="export entries (JSONL verifies offline) to a file")
    export.add_argument("--output", type=Path, required=True)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--customer", help="external id of a customer")
    export.add_argument("--actor")
    export.add_argument("--action", help="e.g. consent.recorded, or consent.*")
    export.add_argument("--purpose")
    export.add_argument("--since", type=datetime.fromisoformat)
    export.add_argument("--until", type=datetime.fromisoformat)
    keys = asub.add_parser("keys", help="write the public keys (JWK Set) for offline checks")
    keys.add_argument("--output", type=Path, help="default: standard output")
    asub.add_parser(
        "rotate-key",
        help="new signing key; the old one signs a last checkpoint and stays published",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.audit_command
    if command == "verify":
        if args.file is not None:
            return _verify_file(args.file, args.public_key, quiet=args.quiet)
        return asyncio.run(
            _verify_database(
                settings,
                args.public_key,
                quiet=args.quiet,
                every=args.all_checkpoints,
                workers=args.workers,
            )
        )
    return asyncio.run(_with_core(args, settings))


# -- verify ---------------------------------------------------------------------------------------


class _Progress:
    """A line on stderr at most once a second: entries so far and the rate."""

    def __init__(self, total: int | None, quiet: bool) -> None:
        self._total = total
        self._quiet = quiet
        self._start = self._last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self._quiet or now - self._last < 1.0:
            return
        self._last = now
        rate = done / max(now - self._start, 1e-9)
        share = f" of {self._total:,} ({done / self._total:.0%})" if self._total else ""
        print(f"  {done:,} entries{share}, {rate:,.0f}/s", file=sys.stderr, flush=True)

    def rate(self, done: int) -> str:
        seconds = time.monotonic() - self._start
        return f"{seconds:.1f} s, {done / max(seconds, 1e-9):,.0f} entries/s"


def _load_keys(path: Path) -> KeyRing:
    try:
        return KeyRing.load(path.read_bytes())
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror}") from None
    except SignatureError as exc:
        raise SystemExit(f"{path}: {exc}") from None


def _print(report: Report, progress: _Progress) -> int:
    print(report.summary())
    print(f"({progress.rate(report.entries)})", file=sys.stderr)
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
    progress = _Progress(None, quiet)
    try:
        with path.open("rb") as handle:
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
    settings: Settings, key_path: Path | None, *, quiet: bool, every: bool, workers: int | None
) -> int:
    from consentry.audit_log.tree import all_checkpoints, key_ring
    from consentry.audit_log.verify import verify_database
    from consentry.boot import database_url, missing_data, missing_tables
    from consentry.storage.database import Database

    if problem := missing_data(settings, secrets=False):  # verifying needs no secret
        raise NoData(problem)
    db = Database(database_url(settings))
    await db.start(pool_size=2)
    try:
        if problem := await missing_tables(db):
            raise NoData(problem)
        head = await db.fetchrow("SELECT seq FROM audit_head WHERE id = 1")
        assert head is not None, "made with the tables"
        keys = _load_keys(key_path) if key_path else await key_ring(db)
        found = await all_checkpoints(db)
        chosen = found if every else sample(found, SAMPLE)
        progress = _Progress(int(head["seq"]), quiet)
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
        report = await verify_database(
            db,
            database_url(settings),
            chosen,
            keys,
            head_seq=int(head["seq"]),
            progress=progress,
            workers=workers,
        )
        return _print(report, progress)
    finally:
        await db.close()


# -- commands that run the core ----------------------------------------------------------------


async def _with_core(args: argparse.Namespace, settings: Settings) -> int:
    from consentry.audit_log import browse as audit_log
    from consentry.audit_log import tree as audit_tree
    from consentry.boot import close_core, open_core
    from consentry.core.errors import ServiceError
    from consentry.core.principals import SYSTEM
    from consentry.customers import records as customers

    core = await open_core(settings, create=False)
    try:
        command = args.audit_command
        if command == "checkpoint":
            print(json.dumps((await core.checkpointer.checkpoint()).to_json(), indent=2))
        elif command == "keys":
            text = json.dumps((await audit_tree.key_ring(core.db)).jwks(), indent=2) + "\n"
            if args.output:
                args.output.write_text(text)
                print(f"wrote {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(text)
        elif command == "rotate-key":
            new = await audit_tree.rotate_key(core.checkpointer, settings, SYSTEM.actor)
            print(f"new signing key {new.key_id}; restart running instances to use it")
        else:
            subject = None
            if args.customer:
                subject, _ = await customers.resolve(core, args.customer)
            f = audit_log.AuditFilter(
                subject, args.actor, args.action, args.purpose, args.since, args.until
            )
            result = await audit_log.export(core, f, args.format, SYSTEM)
            count = await _write(args.output, result.lines)
            print(
                f"wrote {args.output}: {result.header['count']:,} entries,"
                f" checkpoint at size {result.checkpoint.tree_size} ({count:,} bytes)",
                file=sys.stderr,
            )
        return 0
    except ServiceError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await close_core(core)


async def _write(path: Path, lines: Any) -> int:
    written = 0
    with open_private(path) as handle:
        async for chunk in lines:
            handle.write(chunk)
            written += len(chunk)
    return written
