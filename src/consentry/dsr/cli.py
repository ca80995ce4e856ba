"""`consentry requests ...` and `consentry erase`: data-subject requests from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from consentry.settings import Settings
from consentry.storage.files import write_private

ERASE_HELP = """\
Erase customers: each gets an erasure request (verified by this command) that is fulfilled at
once: plugins erase their rows, the customer's data key is destroyed, the core rows go, and a
signed deletion certificate is kept with a tombstone.

One failure does not stop the rest. Running the same list again finishes the failed ones and
reports the done ones as already erased: nothing is redone.

Exit codes: 0 every customer erased (or already erased); 1 some failed or were not found
(listed, and written to --failed-out); 2 usage error."""

CHUNK = 1000


def add_commands(sub: Any) -> None:
    requests = sub.add_parser("requests", help="list, show and fulfil data-subject requests")
    rsub = requests.add_subparsers(dest="requests_command", required=True)
    listing = rsub.add_parser("list", help="open requests first, by due date (overdue first)")
    listing.add_argument(
        "--state", choices=("received", "verified", "in_progress", "completed", "rejected")
    )
    listing.add_argument("--type")
    listing.add_argument("--customer", help="external id")
    listing.add_argument("--overdue", action="store_true", help="only overdue open requests")
    listing.add_argument("--all", action="store_true", help="closed requests too")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    filing = rsub.add_parser("file", help="file a request for a customer; prints its id")
    filing.add_argument("external_id")
    filing.add_argument(
        "--type",
        required=True,
        choices=(
            "access", "portability", "erasure", "rectification", "restrict", "opt_out_sale_share"
        ),
    )  # fmt: skip
    filing.add_argument("--regulation", help="default: the customer's region's")
    filing.add_argument("--verified-by", help="how the customer's identity was already checked")
    filing.add_argument("--note")
    for name, what in (
        ("verify", "record how the customer's identity was verified"),
        ("extend", "extend the deadline once (the reason is told to the customer)"),
        ("reject", "reject the request, with the reason"),
    ):
        step = rsub.add_parser(name, help=what)
        step.add_argument("id")
        step.add_argument("--method" if name == "verify" else "--reason", required=True)
    show = rsub.add_parser("show", help="one request, with clocks and history, as JSON")
    show.add_argument("id")
    fulfil = rsub.add_parser("fulfil", help="do what a verified request asks, and complete it")
    fulfil.add_argument("id")
    fulfil.add_argument("--note", help="rectification/restrict: what was done")
    export = rsub.add_parser("export", help="write a fulfilled access request's bundle (ZIP)")
    export.add_argument("id")
    export.add_argument("--output", type=Path, required=True)

    erase = sub.add_parser(
        "erase",
        help="erase customers (bulk), with progress and a summary",
        description=ERASE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    erase.add_argument("external_ids", nargs="*", help="external ids (or --file)")
    erase.add_argument("--file", type=Path, help="external ids, one per line ('-': stdin)")
    erase.add_argument("--regulation", help="default: each customer's region's regulation")
    erase.add_argument("--note", help="kept sealed on each request (e.g. the ticket number)")
    erase.add_argument("--failed-out", type=Path, help="write the ids that failed here")
    erase.add_argument("--concurrency", type=int, default=8)
    erase.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "erase":
        ids = _ids(args)
        if not ids:
            print("give external ids, or --file", file=sys.stderr)
            return 2
        return asyncio.run(_erase(settings, ids, args))
    return asyncio.run(_requests(settings, args))


def _ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.external_ids)
    if args.file is not None:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    return list(dict.fromkeys(ids))  # once each, in order


class _Progress:
    """A line on stderr at most once a second: done, rate, failures so far."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.counts: Counter[str] = Counter()
        self.start = self.last = time.monotonic()

    def __call__(self, outcome: Any) -> None:
        self.counts[outcome.status] += 1
        now = time.monotonic()
        if not self.quiet and now - self.last >= 1.0:
            self.last = now
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        done = sum(self.counts.values())
        rate = done / max(time.monotonic() - self.start, 1e-9)
        return (
            f"{done:,}/{self.total:,} ({rate:,.0f}/s): erased {self.counts['erased']:,},"
            f" already {self.counts['already_erased']:,}, not found"
            f" {self.counts['not_found']:,}, failed {self.counts['failed']:,}"
        )


async def _erase(settings: Settings, ids: list[str], args: argparse.Namespace) -> int:
    from consentry.boot import close_core, open_core
    from consentry.core.errors import ServiceError
    from consentry.core.principals import SYSTEM
    from consentry.dsr import workflow as dsr

    core = await open_core(settings, create=False)
    progress = _Progress(len(ids), args.quiet)
    bad: list[Any] = []
    try:
        for at in range(0, len(ids), CHUNK):
            outcomes = await dsr.erase_many(
                core, ids[at : at + CHUNK], SYSTEM,
                regulation=args.regulation, note=args.note,
                concurrency=args.concurrency, progress=progress,
            )  # fmt: skip
            bad += [o for o in outcomes if o.status in ("failed", "not_found")]
    except ServiceError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        await close_core(core)
    print(progress.line().replace("/s):", "/s) done:"), file=sys.stderr)
    for o in bad:
        print(f"{o.status}: {o.external_id}: {o.detail}", file=sys.stderr)
    if args.failed_out is not None and bad:
        write_private(args.failed_out, "".join(f"{o.external_id}\n" for o in bad).encode())
        print(f"wrote {len(bad):,} ids to {args.failed_out}: retry with --file", file=sys.stderr)
    return 1 if bad else 0


async def _requests(settings: Settings, args: argparse.Namespace) -> int:
    from consentry.boot import close_core, open_core
    from consentry.core.errors import ServiceError
    from consentry.core.principals import SYSTEM
    from consentry.customers import records as customers
    from consentry.dsr import export as dsr_export
    from consentry.dsr import workflow as dsr
    from consentry.dsr.requests import (
        RequestFilter,
        RequestState,
        RequestType,
        get,
        list_requests,
        parse_id,
        step,
    )
    from consentry.http.convert import dsr_request

    core = await open_core(settings, create=False)
    try:
        command = args.requests_command
        if command == "list":
            flt = RequestFilter(
                state=RequestState(args.state) if args.state else None,
                type=RequestType(args.type) if args.type else None,
                external_id=args.customer,
                overdue=True if args.overdue else None,
                open=None if args.all or args.state else True,
            )
            page = await list_requests(core, flt, cursor=None, limit=args.limit)
            now = core.clock()
            for r in page.items:
                if args.json:
                    print(_json(dsr_request(r, now)))
                else:
                    left = r.days_left(now)
                    due = "" if left is None else ("OVERDUE" if left < 0 else f"{left}d left")
                    print(
                        f"{r.id}  {r.type.value:<18} {r.regulation:<8} {r.state.value:<11}"
                        f" due {r.due_on}  {due:<10} {r.external_id or '(erased)'}"
                    )
            if not page.items:
                print("no requests match", file=sys.stderr)
            if page.next_cursor:
                print(f"(more: raise --limit above {args.limit})", file=sys.stderr)
            return 0
        if command == "file":
            subject_id, region = await customers.resolve(core, args.external_id)
            filed = await dsr.file_request(
                core, subject_id, region, RequestType(args.type), SYSTEM,
                regulation=args.regulation, note=args.note, verified_by=args.verified_by,
            )  # fmt: skip
            print(filed.id)
            print(f"{filed.state.value}, due {filed.due_on}", file=sys.stderr)
            return 0
        request_id = parse_id(args.id)
        if command in ("verify", "extend", "reject"):
            done = await step(
                core, request_id, command, SYSTEM,
                method=getattr(args, "method", None), reason=getattr(args, "reason", None),
            )  # fmt: skip
            print(f"{done.id}: {done.state.value}, due {done.due_on}", file=sys.stderr)
        elif command == "show":
            print(_json(dsr_request(await get(core, request_id, SYSTEM), core.clock())))
        elif command == "fulfil":
            done = await dsr.fulfil(core, request_id, SYSTEM, note=args.note)
            print(f"{done.id}: {done.state.value}", file=sys.stderr)
        else:
            download = await dsr_export.download(core, request_id, SYSTEM.actor)
            write_private(args.output, download.content)  # personal data: owner-only
            print(
                f"wrote {args.output} ({len(download.content):,} bytes, sha256 {download.sha256})",
                file=sys.stderr,
            )
        return 0
    except ServiceError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    finally:
        await close_core(core)


def _json(value: Any) -> str:
    import msgspec

    return json.dumps(msgspec.to_builtins(value), sort_keys=True)
