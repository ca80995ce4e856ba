"""`consentry requests ...` and `consentry erase`: data-subject requests from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from consentry.core.opener import run_on_core
from consentry.core.progress import Progress
from consentry.domain.errors import ServiceError
from consentry.dsr.schemas import request_out
from consentry.storage.files import write_private

if TYPE_CHECKING:
    from consentry.core.opener import Opener
    from consentry.core.runtime import Core
    from consentry.dsr.requests import DsrRequest
    from consentry.dsr.workflow import BulkOutcome

CHUNK = 1000
STATES = ("received", "verified", "in_progress", "completed", "rejected")
TYPES = ("access", "portability", "erasure", "rectification", "restrict", "opt_out_sale_share")


@click.group(short_help="list, show and fulfil data-subject requests")
def requests() -> None:
    """List, file, verify, fulfil and export data-subject requests on the data store."""


@requests.command("list", short_help="open requests first, by due date (overdue first)")
@click.option("--state", type=click.Choice(STATES))
@click.option("--type", "kind")
@click.option("--customer", help="external id")
@click.option("--overdue", is_flag=True, help="only overdue open requests")
@click.option("--all", "closed", is_flag=True, help="closed requests too")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.pass_obj
def list_requests(
    opener: Opener,
    state: str | None,
    kind: str | None,
    customer: str | None,
    overdue: bool,
    closed: bool,
    limit: int,
    as_json: bool,
) -> int:
    """Requests, open ones first, by due date (overdue first), with the days left."""

    async def run(core: Core) -> None:
        from consentry.dsr import requests as dsr

        flt = dsr.RequestFilter(
            state=dsr.RequestState(state) if state else None,
            type=dsr.RequestType(kind) if kind else None,
            external_id=customer,
            overdue=True if overdue else None,
            open=None if closed or state else True,
        )
        page = await dsr.list_requests(core, flt, cursor=None, limit=limit)
        now = core.clock()
        for r in page.items:
            if as_json:
                print(request_json(r, now))
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
            print(f"(more: raise --limit above {limit})", file=sys.stderr)

    return run_on_core(opener, run, refused=_detail)


@requests.command("file", short_help="file a request for a customer; prints its id")
@click.argument("external_id")
@click.option("--type", "kind", required=True, type=click.Choice(TYPES))
@click.option("--regulation", help="default: the customer's region's")
@click.option("--verified-by", help="how the customer's identity was already checked")
@click.option("--note")
@click.pass_obj
def file_request(
    opener: Opener,
    external_id: str,
    kind: str,
    regulation: str | None,
    verified_by: str | None,
    note: str | None,
) -> int:
    """File a request for a customer (by external id); prints its id."""

    async def run(core: Core) -> None:
        from consentry import customers
        from consentry.core.principals import SYSTEM
        from consentry.dsr import workflow as dsr
        from consentry.dsr.requests import RequestType

        subject_id, region = await customers.resolve(core, external_id)
        filed = await dsr.file_request(
            core, subject_id, region, RequestType(kind), SYSTEM,
            regulation=regulation, note=note, verified_by=verified_by,
        )  # fmt: skip
        print(filed.id)
        print(f"{filed.state.value}, due {filed.due_on}", file=sys.stderr)

    return run_on_core(opener, run, refused=_detail)


def _step(action: str, option: str, what: str) -> click.Command:
    """`requests verify|extend|reject ID --method|--reason TEXT`: one step of the workflow."""

    @click.pass_obj
    def command(opener: Opener, id: str, text: str) -> int:
        async def run(core: Core) -> None:
            from consentry.core.principals import SYSTEM
            from consentry.dsr.requests import parse_id, step

            done = await step(
                core, parse_id(id), action, SYSTEM,
                method=text if option == "--method" else None,
                reason=text if option == "--reason" else None,
            )  # fmt: skip
            print(f"{done.id}: {done.state.value}, due {done.due_on}", file=sys.stderr)

        return run_on_core(opener, run, refused=_detail)

    command.__doc__ = f"{what[0].upper()}{what[1:]}."
    command = click.argument("id")(command)
    command = click.option(option, "text", required=True)(command)
    return requests.command(action, short_help=what)(command)


_step("verify", "--method", "record how the customer's identity was verified")
_step("extend", "--reason", "extend the deadline once (the reason is told to the customer)")
_step("reject", "--reason", "reject the request, with the reason")


@requests.command(short_help="one request, with clocks and history, as JSON")
@click.argument("id")
@click.pass_obj
def show(opener: Opener, id: str) -> int:
    """One request, with its clocks and history, as JSON."""

    async def run(core: Core) -> None:
        from consentry.core.principals import SYSTEM
        from consentry.dsr.requests import get, parse_id

        print(request_json(await get(core, parse_id(id), SYSTEM), core.clock()))

    return run_on_core(opener, run, refused=_detail)


@requests.command(short_help="do what a verified request asks, and complete it")
@click.argument("id")
@click.option("--note", help="rectification/restrict: what was done")
@click.pass_obj
def fulfil(opener: Opener, id: str, note: str | None) -> int:
    """Do what a verified request asks, and complete it."""

    async def run(core: Core) -> None:
        from consentry.core.principals import SYSTEM
        from consentry.dsr import workflow as dsr
        from consentry.dsr.requests import parse_id

        done = await dsr.fulfil(core, parse_id(id), SYSTEM, note=note)
        print(f"{done.id}: {done.state.value}", file=sys.stderr)

    return run_on_core(opener, run, refused=_detail)


@requests.command(short_help="write a fulfilled access request's bundle (ZIP)")
@click.argument("id")
@click.option("--output", type=click.Path(path_type=Path), required=True)
@click.pass_obj
def export(opener: Opener, id: str, output: Path) -> int:
    """Write a fulfilled access request's bundle (a ZIP; personal data: owner-only file)."""

    async def run(core: Core) -> None:
        from consentry.core.principals import SYSTEM
        from consentry.dsr import export as dsr_export
        from consentry.dsr.requests import parse_id

        download = await dsr_export.download(core, parse_id(id), SYSTEM.actor)
        write_private(output, download.content)  # personal data: owner-only
        print(
            f"wrote {output} ({len(download.content):,} bytes, sha256 {download.sha256})",
            file=sys.stderr,
        )

    return run_on_core(opener, run, refused=_detail)


def _detail(exc: ServiceError) -> str:
    return str(exc.detail)


def request_json(r: DsrRequest, now: datetime) -> str:
    """A request as one line of JSON: what `GET /v1/requests/{id}` answers."""
    return json.dumps(msgspec.to_builtins(request_out(r, now)), sort_keys=True)


# -- erase ----------------------------------------------------------------------------------


@click.command(short_help="erase customers (bulk), with progress and a summary")
@click.argument("external_ids", nargs=-1)
@click.option(
    "--file", "source", type=click.Path(path_type=Path),
    help="external ids, one per line ('-': stdin)",
)  # fmt: skip
@click.option("--regulation", help="default: each customer's region's regulation")
@click.option("--note", help="kept sealed on each request (e.g. the ticket number)")
@click.option(
    "--failed-out", type=click.Path(path_type=Path), help="write the ids that failed here"
)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--quiet", is_flag=True, help="no progress lines")
@click.pass_obj
def erase(
    opener: Opener,
    external_ids: tuple[str, ...],
    source: Path | None,
    regulation: str | None,
    note: str | None,
    failed_out: Path | None,
    concurrency: int,
    quiet: bool,
) -> int:
    """Erase customers: each gets an erasure request (verified by this command) that is
    fulfilled at once: plugins erase their rows, the customer's data key is destroyed, the core
    rows go, and a signed deletion certificate is kept with a tombstone.

    One failure does not stop the rest. Running the same list again finishes the failed ones
    and reports the done ones as already erased: nothing is redone.

    Exit codes: 0 every customer erased (or already erased); 1 some failed or were not found
    (listed, and written to --failed-out); 2 usage error.
    """
    ids = _ids(external_ids, source)
    if not ids:
        print("give external ids, or --file", file=sys.stderr)
        return 2
    how = {"regulation": regulation, "note": note, "concurrency": concurrency}
    return asyncio.run(_erase(opener, ids, failed_out, quiet, how))


def _ids(given: tuple[str, ...], source: Path | None) -> list[str]:
    ids = list(given)
    if source is not None:
        text = sys.stdin.read() if str(source) == "-" else source.read_text()
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    return list(dict.fromkeys(ids))  # once each, in order


class _Tally:
    """Outcomes by status, with the progress they make."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.counts: Counter[str] = Counter()
        self.progress = Progress(total, self.describe, quiet=quiet)

    def __call__(self, outcome: BulkOutcome) -> None:
        self.counts[outcome.status] += 1
        self.progress(self.counts.total())

    def describe(self, done: int, rate: float) -> str:
        c = self.counts
        return (
            f"{done:,}/{self.progress.total:,} ({rate:,.0f}/s): erased {c['erased']:,},"
            f" already {c['already_erased']:,}, not found {c['not_found']:,},"
            f" failed {c['failed']:,}"
        )


async def _erase(
    opener: Opener, ids: list[str], failed_out: Path | None, quiet: bool, how: dict[str, Any]
) -> int:
    from consentry.core.principals import SYSTEM
    from consentry.domain.errors import ServiceError
    from consentry.dsr import workflow as dsr

    tally = _Tally(len(ids), quiet)
    bad: list[BulkOutcome] = []
    async with opener.core(create=False) as core:
        try:
            with tally.progress:
                for at in range(0, len(ids), CHUNK):
                    outcomes = await dsr.erase_many(
                        core, ids[at : at + CHUNK], SYSTEM, progress=tally, **how
                    )
                    bad += [o for o in outcomes if o.status in ("failed", "not_found")]
        except ServiceError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(tally.progress.line().replace("/s):", "/s) done:"), file=sys.stderr)
    for o in bad:
        print(f"{o.status}: {o.external_id}: {o.detail}", file=sys.stderr)
    if failed_out is not None and bad:
        write_private(failed_out, "".join(f"{o.external_id}\n" for o in bad).encode())
        print(f"wrote {len(bad):,} ids to {failed_out}: retry with --file", file=sys.stderr)
    return 1 if bad else 0
