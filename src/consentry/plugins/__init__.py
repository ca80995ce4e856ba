"""The plugin author's API, all of it: implement hooks with `hookimpl` (the contract is
`hookspecs`), exchange the small types of `types`, write routes with `web`, and raise the
errors below for problem+json answers. A plugin imports `consentry.plugins` and nothing else
of consentry; this package imports nothing above `consentry.domain` (and the pure `query`)."""

from consentry.domain.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServiceError,
    Unavailable,
)
from consentry.domain.pagination import Page, check_limit, decode_cursor, encode_cursor, page_of
from consentry.domain.principals import Principal, Scope
from consentry.domain.purposes import Policy
from consentry.domain.text import clean_name
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
    PluginTx,
    Setting,
    SubjectView,
)
from consentry.plugins.web import (
    ContextDep,
    Cursor,
    Limit,
    PrincipalDep,
    Problem,
    RouteContext,
    problem_response,
    require,
)

__all__ = [
    "Assignee",
    "Capability",
    "Channel",
    "Conflict",
    "ConsentChange",
    "ContextDep",
    "Conversation",
    "Cursor",
    "CustomerEvent",
    "Forbidden",
    "Gate",
    "GateRefused",
    "Gone",
    "Invalid",
    "Limit",
    "Message",
    "NotFound",
    "Page",
    "PluginContext",
    "PluginTx",
    "Policy",
    "Principal",
    "PrincipalDep",
    "Problem",
    "RouteContext",
    "Scope",
    "ServiceError",
    "Setting",
    "SubjectView",
    "Unavailable",
    "check_limit",
    "clean_name",
    "decode_cursor",
    "encode_cursor",
    "hookimpl",
    "page_of",
    "problem_response",
    "require",
    "with_context",
]
