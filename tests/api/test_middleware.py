"""Request ids (taken from the caller when well-formed) and the access log's account of each
request, a client that went away included."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from consentry.app import create_app
from consentry.core.runtime import Core
from consentry.settings import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Request-ID": "order-42/retry.1"}, "order-42/retry.1"),
        ({"X-Request-ID": "a" * 128}, "a" * 128),
        ({"traceparent": TRACEPARENT}, TRACE_ID),
        ({"X-Request-ID": "mine", "traceparent": TRACEPARENT}, "mine"),
    ],
)
async def test_a_well_formed_incoming_id_is_used(
    client: httpx.AsyncClient, headers: dict[str, str], expected: str
) -> None:
    """A caller's X-Request-ID (or traceparent trace id) is echoed, in the problem and the log."""
    with capture_logs() as logs:
        r = await client.get("/v1/customers/ghost", headers=headers)
    assert r.headers["x-request-id"] == expected
    assert r.json()["request_id"] == expected
    assert [e["request_id"] for e in logs if e["event"] == "request"] == [expected]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Request-ID": "a" * 129},
        {"X-Request-ID": "tab\there"},
        {"X-Request-ID": "snow\u2603man".encode()},
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},  # the all-zero trace id
        {"traceparent": f"ff-{TRACE_ID}-00f067aa0ba902b7-01"},  # version ff is invalid
        {"traceparent": "00-nothex-00f067aa0ba902b7-01"},
    ],
)
async def test_a_malformed_incoming_id_is_replaced(
    client: httpx.AsyncClient, headers: dict[str, str | bytes]
) -> None:
    """An overlong, unprintable or malformed id is not echoed: a fresh 32-hex id is used."""
    r = await client.get("/v1/customers/ghost", headers=headers)
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert rid not in str(headers)


async def test_a_client_that_goes_away_is_not_logged_as_a_500(
    settings: Settings, core: Core, admin_key: str
) -> None:
    """A client disconnecting before its body arrived is logged as 499, disconnected."""
    app = create_app(settings, core=core)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/v1/customers/c-1",
        "raw_path": b"/v1/customers/c-1",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {admin_key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": b'{"region":', "more_body": True}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    with capture_logs() as logs:
        await app(scope, receive, send)  # type: ignore[arg-type]
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["status"] == 499 and line["disconnected"] is True


async def test_a_client_that_hangs_up_on_uvicorn_is_logged_as_499(
    live_server: str, admin_key: str
) -> None:
    """Over real HTTP, a client that closes mid-body is logged as 499, disconnected."""
    host, port = live_server.removeprefix("http://").split(":")
    with capture_logs() as logs:
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"PUT /v1/customers/c-1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {admin_key}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"region":'
        )
        await writer.drain()
        await asyncio.sleep(0.1)  # the app is now waiting for the rest of the body
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(5):
            while not [e for e in logs if e["event"] == "request"]:
                await asyncio.sleep(0.01)
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["status"] == 499 and line["disconnected"] is True
