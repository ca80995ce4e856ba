"""Rate limits: generous per API key, tight per customer and per anonymous client, and failed
authentications per client address; X-Forwarded-For only counts from a trusted proxy."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from consentry.app import create_app
from consentry.core.runtime import Core
from consentry.server import uvicorn_config
from consentry.settings import Settings

BAD_KEY = "Bearer ck_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def limited(settings: Settings) -> Settings:
    """The service's default limits (the shared fixture turns them off)."""
    return dataclasses.replace(settings, rate_limits=True)


@contextlib.asynccontextmanager
async def asgi_client(settings: Settings, core: Core, key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, core=core)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield client


async def statuses(client: httpx.AsyncClient, n: int, url: str, **kwargs: object) -> list[int]:
    return [(await client.get(url, **kwargs)).status_code for _ in range(n)]  # type: ignore[arg-type]


async def test_failed_authentications_are_limited(
    limited: Settings, core: Core, admin_key: str
) -> None:
    """40 unknown keys from one address: 30 are 401, then 429 with Retry-After."""
    async with asgi_client(limited, core, admin_key) as client:
        codes = await statuses(client, 40, "/v1/customers/c-1", headers={"Authorization": BAD_KEY})
        assert codes == [401] * 30 + [429] * 10
        r = await client.get("/v1/customers/c-1", headers={"Authorization": BAD_KEY})
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(r.headers["retry-after"]) <= 60


async def test_after_too_many_failures_no_credential_is_checked(
    limited: Settings, core: Core, admin_key: str
) -> None:
    """Once an address spent its failed attempts, even a valid key from it waits (429)."""
    async with asgi_client(limited, core, admin_key) as client:
        await statuses(client, 30, "/v1/plugins", headers={"Authorization": BAD_KEY})
        assert (await client.get("/v1/plugins")).status_code == 429


async def test_a_backend_key_is_not_limited_at_full_speed(
    limited: Settings, core: Core, admin_key: str
) -> None:
    """2,000 requests as fast as they go with one backend key: none is refused."""
    async with asgi_client(limited, core, admin_key) as client:

        async def batch() -> list[int]:
            return await statuses(client, 100, "/v1/plugins")

        codes = [c for b in await asyncio.gather(*(batch() for _ in range(20))) for c in b]
    assert len(codes) == 2000 and set(codes) == {200}


async def test_a_customer_token_is_limited(limited: Settings, core: Core, admin_key: str) -> None:
    """A customer token gets 429 within its 600 a minute; the backend key goes on meanwhile."""
    async with asgi_client(limited, core, admin_key) as client:
        assert (await client.put("/v1/customers/c-1", json={"region": "EU"})).status_code == 201
        token = (await client.post("/v1/customers/c-1/token", json={})).json()["token"]
        mine = {"Authorization": f"Bearer {token}"}
        codes = await statuses(client, 620, "/v1/me/preferences", headers=mine)
        assert codes[:600] == [200] * 600 and codes[-1] == 429  # (it refills 10 a second)
        assert (await client.get("/v1/customers/c-1")).status_code == 200


async def test_requests_without_credential_are_limited_per_address(
    limited: Settings, core: Core, admin_key: str
) -> None:
    """A public operation called without a credential gets 429 after 300 from one address."""
    async with asgi_client(limited, core, admin_key) as client:
        codes = await statuses(client, 310, "/v1/purposes", headers={"Authorization": ""})
    assert codes[:300] == [200] * 300 and codes[-1] == 429  # (it refills 5 a second)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(settings: Settings, core: Core) -> AsyncIterator[str]:
    """The app on uvicorn, configured as `consentry serve` does, on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn_config(settings, create_app(settings, core=core), "127.0.0.1", 0)
    config.lifespan = "off"
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


@pytest.mark.parametrize(("trusted_proxies", "refused"), [("", True), ("127.0.0.1/32", False)])
async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    limited: Settings, core: Core, trusted_proxies: str, refused: bool
) -> None:
    """40 bad keys, each 'forwarded for' another address: limited unless the peer is trusted."""
    proxied = dataclasses.replace(limited, trusted_proxies=trusted_proxies)
    async with served(proxied, core) as url, httpx.AsyncClient(base_url=url) as client:
        codes = [
            (
                await client.get(
                    "/v1/plugins",
                    headers={"Authorization": BAD_KEY, "X-Forwarded-For": f"198.51.100.{i}"},
                )
            ).status_code
            for i in range(40)
        ]
    assert (429 in codes) is refused
    assert codes[:30] == [401] * 30
