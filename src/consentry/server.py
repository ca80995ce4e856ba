"""Running the service: open the core, print where it listens (and a first admin key), serve."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import uvicorn
from litestar.types import ASGIApp

from consentry import logs
from consentry.access.keys import bootstrap_admin_key
from consentry.app import create_app
from consentry.boot import close_core, open_core
from consentry.settings import PACKAGED_POLICY, Settings


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    host, port = host or settings.host, port or settings.port
    settings = with_public_url(settings, host, port)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(settings, host, port))


def with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Listening on loopback, only this machine can follow a link, so its own address is the
    truthful public URL; on any other address the operator must say it (CONSENTRY_PUBLIC_URL),
    since no request header can be trusted to."""
    if settings.public_url or not _is_loopback(host):
        return settings
    shown = f"[{host}]" if ":" in host else host
    return replace(settings, public_url=f"http://{shown}:{port}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (Linux, macOS): a faster event loop, same semantics."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, host: str, port: int) -> int:
    logs.configure(settings.log_level, json=settings.log_json)
    from consentry.policy.loader import PolicyError

    fresh = not settings.data_dir.exists()
    try:
        core = await open_core(settings)
    except PolicyError as exc:
        print(f"consentry: the policy is not valid, not starting:\n{exc}", flush=True)
        return 2
    try:
        key = await bootstrap_admin_key(core)
        _announce(settings, core.db.is_postgres, host, port, key)
        if fresh and settings.data_dir.exists():
            print(
                f"Created a new data folder at {settings.data_dir.resolve()} (its secrets/ holds"
                " the keys to the data: keep it private, back it up apart, never commit it)",
                flush=True,
            )
        app = create_app(settings, core=core)
        await uvicorn.Server(uvicorn_config(settings, app, host, port)).serve()
    finally:
        await close_core(core)
    return 0


def uvicorn_config(settings: Settings, app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app. X-Forwarded-For/-Proto are believed only from the configured
    trusted proxies: uvicorn's own default trusts them from loopback, which let any local client
    (or a proxy that passes the header on) choose its address and so escape its rate limits."""
    proxies = settings.trusted_proxies.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",
    )


def _announce(settings: Settings, postgres: bool, host: str, port: int, key: str | None) -> None:
    base = f"http://{host}:{port}"
    store = "PostgreSQL" if postgres else f"SQLite in {settings.data_dir.resolve()}"
    lines = [
        f"Consentry listening on {base} ({store})",
        f"API docs: {base}/schema  (OpenAPI JSON: {base}/schema/openapi.json)",
        f"Policy: {_policy_name(settings.policy_path)}",
    ]
    if key:
        lines += [
            "",
            "Bootstrap admin API key (shown once, stored only as a hash):",
            f"  {key}",
            "Use it as: Authorization: Bearer <key>",
            "",
        ]
    print("\n".join(lines), flush=True)


def _policy_name(path: Path) -> str:
    where = path.resolve()
    return f"{where} (the packaged default)" if where == PACKAGED_POLICY.resolve() else str(where)
