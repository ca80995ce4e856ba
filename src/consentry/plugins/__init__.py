"""The plugin author's API: implement hooks with `hookimpl`; the contract is `hookspecs`."""

from consentry.plugins.commands import with_context
from consentry.plugins.hookspecs import hookimpl
from consentry.plugins.types import (
    Assignee,
    Capability,
    Channel,
    ConsentChange,
    Conversation,
    CustomerEvent,
    Gate,
    GateRefused,
    Message,
    PluginContext,
    SubjectView,
)

__all__ = [
    "Assignee",
    "Capability",
    "Channel",
    "ConsentChange",
    "Conversation",
    "CustomerEvent",
    "Gate",
    "GateRefused",
    "Message",
    "PluginContext",
    "SubjectView",
    "hookimpl",
    "with_context",
]
