"""The whole plugin contract: every hook a plugin may implement, when the core calls it, with
what, and what it may return.

Rules that hold for every hook:

- Implement a hook with `@consentry.plugins.hookimpl` and a function of the same name; take only
  the arguments you need (pluggy passes them by name). Signatures only ever grow.
- Registration hooks run once, at start, and receive a `register` callback: call it for each
  thing you contribute (`register_commands` receives a click group to add commands to). The
  core validates and de-duplicates; a plugin never mutates core state.
- Hooks marked *async* return an awaitable (write `async def`). The core awaits each plugin's
  result on its own, with a time limit (`CONSENTRY_PLUGIN_TIMEOUT_SECONDS`, 5 s by default): a
  plugin that raises, hangs or returns the wrong type is logged, named in the answer as a
  problem, and never stops another plugin or corrupts core data.
- Customer data reaches a plugin only through `context.gate.view(capability, subject_id)`,
  which answers with a `SubjectView` of the fields the capability's purposes may use, or raises
  `GateRefused`. Every view built is audited.
- Unless a hook says "first result wins", every plugin's implementation is called and the order
  does not matter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

import click
import pluggy

from consentry.plugins.types import (
    Assignee,
    Capability,
    Channel,
    ConsentChange,
    Conversation,
    CustomerEvent,
    PluginContext,
    Setting,
)

PROJECT = "consentry"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration: once, at start ---------------------------------------------------------------


@hookspec
def register_settings(register: Callable[[Setting], None]) -> None:
    """Declare each setting the plugin reads (name, kind, default, help, secret). Called first,
    once, at start; the host reads them from `CONSENTRY_<PLUGIN>_<NAME>` (or the settings file's
    `[<plugin>]` table), refuses a bad value, and hands them over as `context.settings` (and as
    `settings` to `register_channels`)."""


@hookspec
def register_capabilities(register: Callable[[Capability], None]) -> None:
    """Declare each capability the plugin uses and the purposes it needs.

    Called once at start. The policy's `gates` must map the capability to exactly these
    purposes (the plugin contract check says so when they disagree); a capability the policy
    does not gate is refused by the gate at every call."""


@hookspec
def register_routes(register: Callable[[Any], None]) -> None:
    """Contribute HTTP route handlers or controllers (Litestar), mounted under `/v1/plugins/
    <plugin>/`. They go through the same authentication as core routes, and take what they need
    from `consentry.plugins.web`: `context: ContextDep` (bound to this plugin by the host) and
    `principal: PrincipalDep`; a handler that asks for the core stops the start. Called once at
    start."""


@hookspec
def register_tables(register: Callable[[type[Any]], None]) -> None:
    """Contribute piccolo `Table` classes for the plugin's own data. They are created at start
    (idempotently) beside the core tables; name them `<plugin>_<thing>`."""


@hookspec
def register_commands(group: click.Group) -> None:
    """Contribute `consentry <name>` subcommands: add click commands (or groups) to `group`.
    They are listed in `consentry --help` with the plugin's name. A command that decorates its
    async callback with `consentry.plugins.with_context` gets the plugin's context, on the
    existing data (it creates none); its result is the exit code. Two plugins cannot use the
    same name, nor a plugin the name of one of the service's own commands."""


@hookspec
def register_channels(register: Callable[[Channel], None], settings: Mapping[str, Any]) -> None:
    """Contribute delivery channels (email, webhook, chat...). A channel's name must be one of
    the policy's channels. Called once at start, with the plugin's own settings."""


@hookspec
def register_template_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Contribute template filters, by name, for the templates plugin. A filter is a pure
    function of its arguments: it sees no customer data beyond the value it is given."""


# -- reactions: after a change is committed (async) --------------------------------------------


@hookspec
def consent_changed(change: ConsentChange, context: PluginContext) -> Awaitable[None] | None:
    """*Async.* A decision was recorded and committed. Withdrawals must take effect here (e.g.
    leave a segment at once). Nothing is returned; an error is logged and reported."""


@hookspec
def event_received(event: CustomerEvent, context: PluginContext) -> Awaitable[None] | None:
    """*Async.* A customer event was recorded and committed (event-triggered flows start here).
    The event's properties are not passed: ask the gate for a view if you need data."""


# -- routing ------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def assign_conversation(conversation: Conversation) -> Assignee | None:
    """Choose who answers an inbound conversation. First result wins: return None to let the
    next plugin decide. Synchronous and fast (no I/O)."""


# -- data-subject requests (async; the core fails the request loudly if one fails) -------------


@hookspec
def dsr_export(subject_id: UUID, context: PluginContext) -> Awaitable[dict[str, Any]] | None:
    """*Async.* Everything the plugin holds about this customer, as JSON-serialisable data; it
    goes into the customer's export bundle under the plugin's name. Return {} when nothing."""


@hookspec
def dsr_erase(subject_id: UUID, context: PluginContext) -> Awaitable[int] | None:
    """*Async.* Erase everything the plugin holds about this customer, in the plugin's own
    tables (through `context.execute`); return the number of rows removed. Must be idempotent:
    erasing twice removes nothing the second time."""
