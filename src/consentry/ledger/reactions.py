"""After a change is committed, plugins hear of it: `consent_changed`, `event_received`.

Each plugin is called with its own context and time limit; a failure is contained and counted
(`GET /v1/plugins`) and never undoes the change, which is already durable.
"""

from __future__ import annotations

from collections.abc import Iterable

from consentry.core.runtime import Core
from consentry.plugins.types import ConsentChange, CustomerEvent


async def consents_changed(core: Core, changes: Iterable[ConsentChange]) -> None:
    if not core.plugins.implements("consent_changed"):
        return
    for change in changes:
        await core.plugins.notify("consent_changed", core.plugin_context, change=change)


async def events_received(core: Core, events: Iterable[CustomerEvent]) -> None:
    if not core.plugins.implements("event_received"):
        return
    for event in events:
        await core.plugins.notify("event_received", core.plugin_context, event=event)
