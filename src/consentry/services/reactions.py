"""After a change is committed, plugins hear of it: `consent_changed`, `event_received`.

Each plugin is called with its own context and time limit; a failure is contained and counted
(`GET /v1/plugins`) and never undoes the change, which is already durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consentry.plugins.types import ConsentChange, CustomerEvent, PluginContext
from consentry.services.core import Core


def _context_for(core: Core) -> Callable[[str], PluginContext]:
    # imported here: the plugin context reads consents, and consents report here (a cycle)
    from consentry.plugins.context import CoreContext

    return lambda name: CoreContext(core, name)


async def consents_changed(core: Core, changes: Iterable[ConsentChange]) -> None:
    if not core.plugins.implements("consent_changed"):
        return
    for change in changes:
        await core.plugins.notify("consent_changed", _context_for(core), change=change)


async def events_received(core: Core, events: Iterable[CustomerEvent]) -> None:
    if not core.plugins.implements("event_received"):
        return
    for event in events:
        await core.plugins.notify("event_received", _context_for(core), event=event)
