"""Template renders per second (DESIGN.md §11: >= 20,000/s), medians of several runs.

    .venv/bin/python bench/templates.py                  # both figures, 5 runs of 2 s
    .venv/bin/python bench/templates.py --runs 3 --seconds 1 --no-gate

1. render, view already built: a typical email (html, subject + body, five variables, three
   fallbacks, one filter chain, company data) rendered from a ready `SubjectView`, in process:
   the sandbox's cost alone (limits, guarded filters, escaping, the render context).
2. render through the gate, end to end (unless --no-gate): `Runtime.preview` on a SQLite core
   in a temp dir, as the preview route does it: a gate view per render (consent read, subject
   decrypted, one audit entry, durable group commit) then the render; `--concurrency` tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "plugins")]

import consentry_templates  # noqa: E402
import liquid  # noqa: E402
from consentry_templates.filters import FILTERS  # noqa: E402
from consentry_templates.render import Runtime, compile_template, render  # noqa: E402
from consentry_templates.sandbox import Sandbox  # noqa: E402
from consentry_templates.store import Stored  # noqa: E402
from consentry_templates.variables import Vocabulary, company_of, render_data  # noqa: E402

from consentry.boot import close_core, open_core  # noqa: E402
from consentry.customers import records as customers  # noqa: E402
from consentry.domain.consent import Decision  # noqa: E402
from consentry.host.manager import Plugins  # noqa: E402
from consentry.ledger import consents  # noqa: E402
from consentry.plugins.types import SubjectView  # noqa: E402
from consentry.policy.loader import load_policy  # noqa: E402
from consentry.settings import Settings  # noqa: E402
from consentry.testing import TEST_ACTOR  # noqa: E402

SUBJECT = "{{ customer.first_name | default: 'Hello' }}, your {{ customer.plan }} plan"
BODY = """<html><body>
<p>Hi {{ customer.first_name | default: "there" }},</p>
<p>Thanks for using the {{ customer.plan | default: "free" | capitalize }} plan at
{{ customer.company | default: "your company" }}. We have new features for teams in
{{ customer.city | default: "your city" }}.</p>
<p><a href="https://example.com/upgrade?plan={{ customer.plan | url_encode }}">Upgrade</a></p>
<footer>{{ company.name }} &middot; <a href="{{ company.policy_url }}">Privacy</a></footer>
</body></html>"""
ATTRIBUTES = {"first_name": "Ada", "plan": "pro", "company": "Acme <Labs>", "city": "Lyon"}


def _rate(call: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(calls per wall second, calls per CPU second of this process) over about `seconds`."""
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            call()
        done += 200
    return done / (time.perf_counter() - started), done / (time.process_time() - cpu)


def bare_liquid(seconds: float) -> tuple[float, float]:
    """The floor: the same template in plain python-liquid (no sandbox, no view, no limits)."""
    body = liquid.Environment(autoescape=True).from_string(BODY)
    subject = liquid.Environment().from_string(SUBJECT)
    data = {"customer": ATTRIBUTES, "company": {"name": "Example Inc.", "policy_url": "x"}}
    return _rate(lambda: (body.render(data), subject.render(data)), seconds)


def in_process(seconds: float) -> tuple[float, float]:
    policy = load_policy(Settings().policy_path)
    vocabulary = Vocabulary.of(policy, "templates.render")
    compiled = compile_template(
        Sandbox.build(FILTERS), vocabulary, kind="html", body=BODY, subject=SUBJECT, strict=True
    )
    view = SubjectView(
        uuid4(),
        "templates.render",
        ("personalization",),
        "EU",
        ATTRIBUTES,
        {},
        vocabulary.categories,
    )
    company = company_of(policy)
    assert "Acme &lt;Labs&gt;" in render(compiled, render_data(view, company)).body
    return _rate(lambda: render(compiled, render_data(view, company)), seconds)


async def through_gate(seconds: float, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/bench.sqlite",
            rate_limits=False,
            log_json=True,
        )
        core = await open_core(settings, plugins=Plugins.of(("templates", consentry_templates)))
        try:
            made, _ = await customers.upsert(
                core, customers.CustomerUpsert("b-1", "EU", {}, dict(ATTRIBUTES)), TEST_ACTOR
            )
            await consents.record_for(
                core,
                made.id,
                "EU",
                consents.RecordRequest([consents.DecisionIn("personalization", Decision.GRANTED)]),
                TEST_ACTOR,
            )
            now = datetime.now(UTC)
            stored = Stored(
                uuid4(), "bench", "html", "templates.render", SUBJECT, BODY, True, 1, now, now
            )
            runtime = Runtime.of(core.plugin_context("templates"))
            assert "Ada" in (await runtime.preview(stored, made.id)).rendered.body
            done = 0
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < deadline:
                    await runtime.preview(stored, made.id)
                    done += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return done / (time.perf_counter() - started)
        finally:
            await close_core(core)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-gate", action="store_true")
    args = parser.parse_args()

    in_process(0.3)  # warm up
    for label, measure in (
        ("template renders/s, view built, in process", in_process),
        ("floor: the same template in bare python-liquid", bare_liquid),
    ):
        runs = [measure(args.seconds) for _ in range(args.runs)]
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        print(
            f"{label}: median {statistics.median(wall):,.0f}/s wall,"
            f" {statistics.median(cpu):,.0f} per CPU-second (target 20,000;"
            f" runs: {', '.join(f'{r:,.0f}' for r in wall)})"
        )
    if not args.no_gate:
        gated = [
            asyncio.run(through_gate(args.seconds, args.concurrency)) for _ in range(args.runs)
        ]
        print(
            f"template renders/s through the gate (view + audit + durable commit, SQLite,"
            f" concurrency {args.concurrency}): median {statistics.median(gated):,.0f}"
            f" (runs: {', '.join(f'{r:,.0f}' for r in gated)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
