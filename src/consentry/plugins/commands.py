"""Commands a plugin adds to `consentry`: plain click commands, registered by `register_commands`
on the group it is given. `with_context` hands a command its plugin's `PluginContext`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, runtime_checkable

import click

from consentry.plugins.types import PluginContext

P = ParamSpec("P")
Body = Callable[[PluginContext], Awaitable[int]]


@runtime_checkable
class CommandHost(Protocol):
    """What `consentry` puts in click's context object for plugin commands."""

    def run_plugin_command(self, command: str, body: Body) -> int:
        """Open the core on existing data (it creates none), run `body` with the context of
        the plugin that registered `command`, close the core; the exit code."""
        ...


def with_context(
    command: Callable[Concatenate[PluginContext, P], Awaitable[int]],
) -> Callable[P, int]:
    """Make an async function taking `(context, **click parameters)` a click callback: it runs
    with its plugin's context on the service's data, and its result is the exit code.

        @click.command("hello-count", help="count the greetings")
        @click.option("--since")
        @with_context
        async def count(context: PluginContext, since: str | None) -> int: ...
    """

    @functools.wraps(command)
    def callback(*args: P.args, **kwargs: P.kwargs) -> int:
        ctx = click.get_current_context()
        host = ctx.find_root().obj
        if not isinstance(host, CommandHost):
            raise click.UsageError("plugin commands run from `consentry`")
        top = ctx
        while top.parent is not None and top.parent.parent is not None:
            top = top.parent
        name = top.info_name or ""
        return host.run_plugin_command(name, lambda context: command(context, *args, **kwargs))

    return callback
