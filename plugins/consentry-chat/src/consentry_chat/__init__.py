"""consentry-chat: an example third-party plugin that adds a signed chat-webhook channel.

Every hook the plugin implements is here; the work is in `deliveries`, `webhook` and `routes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import click
from consentry.plugins import Capability, Channel, PluginContext, Setting, hookimpl, with_context

from consentry_chat import deliveries, routes, tables, webhook

__version__ = "0.1.0"


@hookimpl
def register_capabilities(register: Callable[[Capability], None]) -> None:
    register(
        Capability(
            deliveries.CAPABILITY,
            deliveries.PURPOSES,
            "Send product updates to the customer over the company's chat",
        )
    )


@hookimpl
def register_settings(register: Callable[[Setting], None]) -> None:
    for setting in webhook.SETTINGS:
        register(setting)


@hookimpl
def register_channels(register: Callable[[Channel], None], settings: Mapping[str, Any]) -> None:
    register(Channel("chat", webhook.sender(settings), "Chat messages through a signed webhook"))


@hookimpl
def register_tables(register: Callable[[type[Any]], None]) -> None:
    register(tables.ChatDelivery)


@hookimpl
def register_routes(register: Callable[[Any], None]) -> None:
    register(routes.send_chat)


@hookimpl
def register_commands(group: click.Group) -> None:
    group.add_command(count_deliveries)


@click.command("chat-deliveries", short_help="count the chat messages sent, by status")
@with_context
async def count_deliveries(context: PluginContext) -> int:
    """Count the chat messages sent, by status."""
    rows = await context.fetch(
        "SELECT status, COUNT(*) AS n FROM chat_deliveries GROUP BY status ORDER BY status"
    )
    print(f"{sum(int(r['n']) for r in rows)} deliveries")
    for r in rows:
        print(f"  {r['status']}: {r['n']}")
    return 0


@hookimpl
async def dsr_export(subject_id: UUID, context: PluginContext) -> dict[str, Any]:
    return await deliveries.export(context, subject_id)


@hookimpl
async def dsr_erase(subject_id: UUID, context: PluginContext) -> int:
    return await deliveries.erase(context, subject_id)
