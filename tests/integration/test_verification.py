"""A customer without a token proves who they are by email (a real SMTP server, aiosmtpd) and
files their own erasure request; the answers tell no one who is a customer, and limits (kept in
the database) make guessing codes hopeless."""

from __future__ import annotations

import io
import logging
import re
import socket
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
import structlog
from aiosmtpd.controller import Controller

from consentry import logs
from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.clock import Clock, FrozenClock, system_clock
from consentry.core.runtime import Core
from consentry.settings import Settings
from consentry.storage.schema import migrate

Client = httpx.AsyncClient
PUBLIC = {"Authorization": ""}
KNOWN = "vera@example.com"
UNKNOWN = "nobody@example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The defaults, but emails leave within 0.2 s of the answer (not 2 s): quick tests."""
    return replace(settings, verification_send_jitter_seconds=0.2)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.answer = "250 OK"  # what the server says to a message ("554 ...": it refuses it)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.answer.startswith("250"):
            self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return self.answer

    def code(self) -> str:
        body = self.messages[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        found = re.search(r"\b(\d{10})\b", body.decode())
        assert found, body
        return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    port = free_port()
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CONSENTRY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CONSENTRY_SMTP_PORT", str(port))
    monkeypatch.setenv("CONSENTRY_SMTP_FROM", "privacy@shop.example")
    try:
        yield box
    finally:
        controller.stop()


@asynccontextmanager
async def service(
    settings: Settings, clock: Clock = system_clock
) -> AsyncIterator[tuple[Core, Callable[[str], Client]]]:
    """A core on this test's database, and clients that come from a given network address."""
    core = await open_core(settings, clock=clock)
    key = await bootstrap_admin_key(core)
    app: Any = create_app(settings, clock=clock, core=core)
    opened: list[Client] = []

    def client_from(host: str) -> Client:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        headers = {"Authorization": f"Bearer {key}"}
        opened.append(Client(transport=transport, base_url="http://testserver", headers=headers))
        return opened[-1]

    try:
        yield core, client_from
    finally:
        for c in opened:
            await c.aclose()
        await close_core(core)


async def ask(client: Client, email: str) -> httpx.Response:
    return await client.post("/v1/verifications", json={"email": email}, headers=PUBLIC)


async def confirm(client: Client, email: str, code: str) -> httpx.Response:
    body = {"email": email, "code": code}
    return await client.post("/v1/verifications/confirm", json=body, headers=PUBLIC)


def other(code: str) -> str:
    return "0000000000" if code != "0000000000" else "1111111111"


def seen(r: httpx.Response) -> tuple[int, dict[str, Any], str | None]:
    """What a client sees of an answer, but for the per-request id."""
    body = {k: v for k, v in r.json().items() if k != "request_id"}
    return r.status_code, body, r.headers.get("retry-after")


async def test_email_code_then_own_erasure_request(
    inbox: Inbox, client: Client, core: Core
) -> None:
    """The emailed code, once, gives a customer token that files the customer's own request."""
    r = await client.put("/v1/customers/v-1", json={"identities": {"email": "Vera@Example.com"}})
    assert r.status_code == 201
    assert (await ask(client, UNKNOWN)).status_code == 202
    r = await ask(client, KNOWN)
    assert r.status_code == 202, r.text
    await core.background.drain()
    [mail] = inbox.messages  # nothing went to the unknown address
    assert mail["To"] == KNOWN and mail["From"] == "privacy@shop.example"
    code = inbox.code()

    r = await confirm(client, KNOWN, other(code))
    assert r.status_code == 401 and "wrong, used or expired" in r.json()["detail"]
    r = await confirm(client, KNOWN, code)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert (await confirm(client, KNOWN, code)).status_code == 401  # the code works once

    me = {"Authorization": f"Bearer {token}"}
    r = await client.post("/v1/me/requests", json={"type": "erasure"}, headers=me)
    assert r.status_code == 201 and r.json()["state"] == "verified"
    r = await client.get(
        "/v1/audit/entries", params={"customer": "v-1", "action": "verification.*"}
    )
    actions = sorted(e["action"] for e in r.json()["items"])
    assert actions == [
        "verification.code_sent",
        "verification.confirmed",
        "verification.failed",
    ]
    assert "vera" not in r.text.lower() and code not in r.text


async def test_five_wrong_codes_use_the_code_up(inbox: Inbox, client: Client, core: Core) -> None:
    """After five wrong codes, even the right one is refused."""
    await client.put("/v1/customers/v-2", json={"identities": {"email": KNOWN}})
    await ask(client, KNOWN)
    await core.background.drain()
    code = inbox.code()
    for _ in range(5):
        assert (await confirm(client, KNOWN, other(code))).status_code == 401
    assert (await confirm(client, KNOWN, code)).status_code == 401


async def wrong_codes(client: Client, email: str, times: int) -> list[httpx.Response]:
    return [await confirm(client, email, "0123456789") for _ in range(times)]


async def asks(client: Client, email: str, times: int) -> list[httpx.Response]:
    return [await ask(client, email) for _ in range(times)]


async def ask_then_wrong(client: Client, email: str, times: int) -> list[httpx.Response]:
    return [await ask(client, email), *await wrong_codes(client, email, times)]


Scenario = Callable[[Client, str], Awaitable[list[httpx.Response]]]
SCENARIOS: dict[str, Scenario] = {
    "a code asked for": lambda c, e: asks(c, e, 1),
    "a code asked for, then a wrong one": lambda c, e: ask_then_wrong(c, e, 1),
    "a code used up by five wrong ones, then a sixth": lambda c, e: ask_then_wrong(c, e, 6),
    "a code never asked for": lambda c, e: wrong_codes(c, e, 1),
    "more codes than the hourly limit": lambda c, e: asks(c, e, 4),
    "more wrong codes than the daily lockout": lambda c, e: wrong_codes(c, e, 11),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_known_and_unknown_addresses_get_the_same_answers(
    inbox: Inbox, client: Client, scenario: str
) -> None:
    """Status, body and Retry-After are the same whether or not a customer has the address."""
    await client.put("/v1/customers/v-1", json={"identities": {"email": KNOWN}})
    known = [seen(r) for r in await SCENARIOS[scenario](client, KNOWN)]
    unknown = [seen(r) for r in await SCENARIOS[scenario](client, UNKNOWN)]
    assert known == unknown


async def test_no_smtp_server_is_the_same_503_for_everyone(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an SMTP server every address gets the same 503, which says why."""
    monkeypatch.delenv("CONSENTRY_SMTP_HOST", raising=False)
    await client.put("/v1/customers/v-3", json={"identities": {"email": KNOWN}})
    known, unknown = seen(await ask(client, KNOWN)), seen(await ask(client, UNKNOWN))
    assert known == unknown
    assert known[0] == 503 and "no email channel configured" in known[1]["detail"]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))


async def test_codes_per_address_free_up_after_the_hour(
    settings: Settings, clock: FrozenClock, inbox: Inbox
) -> None:
    """The fourth code in an hour is a 429 whose Retry-After is when the first one ages out."""
    async with service(settings, clock) as (_, client_from):
        client = client_from("192.0.2.1")
        assert [r.status_code for r in await asks(client, UNKNOWN, 3)] == [202] * 3
        clock.advance(minutes=20)
        r = await ask(client, UNKNOWN)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        wait = int(r.headers["retry-after"])
        assert 40 * 60 <= wait <= 40 * 60 + 1  # rounded up from the writer's stamps (+1 µs)
        assert "at most 3 per hour" in r.json()["detail"]
        clock.advance(seconds=wait - 1)
        assert (await ask(client, UNKNOWN)).status_code == 429
        clock.advance(seconds=1)
        assert (await ask(client, UNKNOWN)).status_code == 202


async def test_codes_per_client_are_limited_across_addresses(
    settings: Settings, inbox: Inbox
) -> None:
    """One network address gets ten codes an hour, whatever the addresses; another is not held."""
    async with service(settings) as (_, client_from):
        first, second = client_from("192.0.2.1"), client_from("192.0.2.2")
        answers = [await ask(first, f"n{i}@example.com") for i in range(11)]
        assert [r.status_code for r in answers] == [202] * 10 + [429]
        assert 3590 <= int(answers[-1].headers["retry-after"]) <= 3600
        assert (await ask(second, "n11@example.com")).status_code == 202


async def test_lockout_refuses_even_the_right_code_for_a_day(
    settings: Settings, clock: FrozenClock, inbox: Inbox
) -> None:
    """After ten wrong codes in a day the right code gets a 429 too, until the day is over."""
    async with service(settings, clock) as (core, client_from):
        client = client_from("192.0.2.1")
        await client.put("/v1/customers/v-1", json={"identities": {"email": KNOWN}})
        for _ in range(2):
            await ask(client, KNOWN)
            await wrong_codes(client, KNOWN, 5)  # five burn a code: ask again
        await ask(client, KNOWN)
        await core.background.drain()
        r = await confirm(client, KNOWN, inbox.code())
        assert r.status_code == 429
        wait = int(r.headers["retry-after"])
        assert 24 * 3600 <= wait <= 24 * 3600 + 1
        clock.advance(seconds=wait, milliseconds=1)  # the writer's stamps ran µs ahead
        await ask(client, KNOWN)
        await core.background.drain()
        assert (await confirm(client, KNOWN, inbox.code())).status_code == 201


async def test_wrong_codes_per_client_are_limited_across_addresses(
    settings: Settings, inbox: Inbox
) -> None:
    """Fifty wrong codes from one network address in a day, over any addresses, lock it out."""
    async with service(settings) as (_, client_from):
        first, second = client_from("192.0.2.1"), client_from("192.0.2.2")
        answers = [r for i in range(6) for r in await wrong_codes(first, f"n{i}@example.com", 9)]
        assert [r.status_code for r in answers] == [401] * 50 + [429] * 4
        assert (await confirm(second, "n9@example.com", "0123456789")).status_code == 401


async def test_limits_hold_across_a_restart(settings: Settings, inbox: Inbox) -> None:
    """The counts are in the database: a restarted service still refuses."""
    async with service(settings) as (_, client_from):
        await asks(client_from("192.0.2.1"), UNKNOWN, 3)
    async with service(settings) as (_, client_from):
        assert (await ask(client_from("192.0.2.1"), UNKNOWN)).status_code == 429


async def timed(call: Awaitable[httpx.Response], status: int) -> float:
    start = time.perf_counter()
    r = await call
    elapsed = time.perf_counter() - start
    assert r.status_code == status, r.text
    return elapsed


@pytest.mark.slow
async def test_known_and_unknown_addresses_take_about_as_long(
    settings: Settings, inbox: Inbox
) -> None:
    """Median times to answer for a customer's address and for nobody's are within 2x."""
    rounds = 60
    roomy = replace(
        settings,
        verification_codes_per_address_per_hour=10,
        verification_codes_per_client_per_hour=10 * rounds,
        verification_failures_per_client_per_day=10 * rounds,
    )
    async with service(roomy) as (core, client_from):
        client = client_from("192.0.2.1")
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(rounds):
            await client.put(f"/v1/customers/t-{i}", json={"identities": {"email": f"k{i}@ex.com"}})
        for i in range(rounds):  # interleaved, so load on the machine falls on both alike
            for kind, email in (("known", f"k{i}@ex.com"), ("unknown", f"u{i}@ex.com")):
                times[kind].append(await timed(ask(client, email), 202))
                times[kind].append(await timed(confirm(client, email, "0123456789"), 401))
        await core.background.drain()
    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    assert known < 2 * unknown and unknown < 2 * known, (known, unknown)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON, debug), written to a buffer."""
    stream = io.StringIO()
    logs.configure("debug", json=True, stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()


async def test_no_address_or_code_reaches_logs_or_audit(
    inbox: Inbox,
    client: Client,
    core: Core,
    captured: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asking, confirming and a failed send log and audit neither the address nor the code."""
    monkeypatch.setattr(logging.getLogger("mail.log"), "disabled", True)  # the test's SMTP server
    await client.put("/v1/customers/v-1", json={"identities": {"email": KNOWN}})
    await client.put("/v1/customers/v-2", json={"identities": {"email": "wanda@example.com"}})
    await ask(client, KNOWN)
    await ask(client, UNKNOWN)
    await core.background.drain()
    code = inbox.code()
    wrong = "5550123987" if code != "5550123987" else "5550123988"  # unlike any hash or id
    await confirm(client, KNOWN, wrong)
    await confirm(client, UNKNOWN, wrong)
    assert (await confirm(client, KNOWN, code)).status_code == 201
    inbox.answer = "554 Transaction failed"  # the server refuses the next message
    await ask(client, "wanda@example.com")
    await core.background.drain()
    r = await client.get("/v1/audit/entries", params={"limit": 500})
    text = captured.getvalue() + r.text
    assert "verification.send_failed" in text and "verification.code_sent" in text
    for secret in (KNOWN, UNKNOWN, "wanda@example.com", "vera", "wanda", code, wrong):
        assert secret not in text.lower()


async def test_erasure_deletes_the_customers_codes(
    inbox: Inbox, client: Client, core: Core
) -> None:
    """An erased customer's codes are deleted with them, and counted in the erasure's rows."""
    r = await client.put("/v1/customers/v-1", json={"identities": {"email": KNOWN}})
    subject_id = r.json()["id"]
    await asks(client, KNOWN, 2)
    body = {"external_id": "v-1", "type": "erasure", "verified_by": "signed-in account"}
    r = await client.post("/v1/requests", json=body)
    r = await client.post(f"/v1/requests/{r.json()['id']}/fulfil", json={})
    assert r.json()["result"]["erasure"]["erased"]["rows"]["verification_codes"] == 2
    left = await core.db.fetch("SELECT id FROM verification_codes WHERE subject_id = ?", subject_id)
    assert left == []


async def test_migration_drops_the_table_that_held_codes_by_customer(core: Core) -> None:
    """`verifications` (codes by customer, before `verification_codes`) is dropped at start."""
    async with core.db.transaction() as tx:
        await tx.execute("CREATE TABLE verifications (id TEXT, subject_id TEXT, code_hash TEXT)")
        await tx.execute("DELETE FROM consentry_meta WHERE name = 'migration 0001_baseline'")
    await migrate(core.db)
    tables = await core.db.fetch(
        "SELECT table_name AS name FROM information_schema.tables"
        " WHERE table_schema = current_schema()"
        if core.db.is_postgres
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    names = {t["name"] for t in tables}
    assert "verification_codes" in names and "verifications" not in names
