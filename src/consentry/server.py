"""Running the service: open the core, print where it listens (and a first admin key), serve."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import replace

import uvicorn

from consentry import logs
from consentry.api.app import create_app
from consentry.services.access import bootstrap_admin_key
from consentry.services.core import close_core, open_core
from consentry.settings import Settings


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

    try:
        core = await open_core(settings)
    except PolicyError as exc:
        print(f"consentry: the policy is not valid, not starting:\n{exc}", flush=True)
        return 2
    try:
        key = await bootstrap_admin_key(core)
        _announce(settings, core.db.is_postgres, host, port, key)
        app = create_app(settings, core=core)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
        )
        await uvicorn.Server(config).serve()
    finally:
        await close_core(core)
    return 0


def _announce(settings: Settings, postgres: bool, host: str, port: int, key: str | None) -> None:
    base = f"http://{host}:{port}"
    store = "PostgreSQL" if postgres else f"SQLite in {settings.data_dir.resolve()}"
    lines = [
        f"Consentry listening on {base} ({store})",
        f"API docs: {base}/schema  (OpenAPI JSON: {base}/schema/openapi.json)",
        f"Policy: {settings.policy_path}",
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
