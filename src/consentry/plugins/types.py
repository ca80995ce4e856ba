"""The small, framework-free types that cross the plugin contract (see `hookspecs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from consentry.domain.purposes import Policy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Capability:
    """Something a plugin does with customer data, e.g. `segments.membership`.

    `purposes` are the purposes the plugin says it needs; the policy's `gates` section decides
    (the contract check fails when the two disagree or a purpose is unknown)."""

    name: str
    purposes: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class SubjectView:
    """What the gate lets a plugin see of one customer, for one capability.

    `subject_id` is the pseudonymous id. `attributes` and `identities` hold only the fields
    whose data categories the allowed purposes use. `purposes` are the purposes that allowed it.
    """

    subject_id: UUID
    capability: str
    purposes: tuple[str, ...]
    region: str
    attributes: Mapping[str, Any]
    identities: Mapping[str, str]
    categories: frozenset[str]


class Gate(Protocol):
    """The only way a plugin reaches customer data."""

    async def view(self, capability: str, subject_id: UUID) -> SubjectView:
        """A view for `capability`; raises `GateRefused` with the reason when it is denied."""
        ...

    async def allowed(self, capability: str, subject_id: UUID) -> bool:
        """Whether a view would be granted, without building or auditing one."""
        ...

    async def subject_id(self, external_id: str) -> UUID:
        """The pseudonymous id of the customer the company calls `external_id` (what a route
        receives); `NotFound` (a 404 problem) when there is none. Reveals nothing else."""
        ...

    async def count(
        self, capability: str, purpose: str, root: Any, *, requested_by: str | None = None
    ) -> int:
        """How many customers match the filter tree (`consentry.query.ast`) and may be used for
        `purpose` now; the core compiles and runs it, and audits the query."""
        ...

    async def members(
        self,
        capability: str,
        purpose: str,
        root: Any,
        *,
        after: UUID | None = None,
        limit: int = 100,
        requested_by: str | None = None,
    ) -> list[UUID]:
        """Their pseudonymous ids in id order, after `after`, `limit + 1` at most (the extra
        one says another page exists); audited with the ids, in the same transaction."""
        ...


class GateRefused(Exception):
    """The gate said no: unknown capability, missing or withdrawn consent, policy error."""

    def __init__(self, capability: str, subject_id: UUID | None, reasons: list[str]) -> None:
        whom = f" for subject {subject_id}" if subject_id else ""
        super().__init__(f"{capability} refused{whom}: {'; '.join(reasons)}")
        self.capability = capability
        self.subject_id = subject_id
        self.reasons = reasons


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A decision was recorded for a customer (after COMMIT)."""

    subject_id: UUID
    purpose: str
    channel: str
    decision: str  # granted | denied | withdrawn | pending
    source: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """An event was recorded for a customer (after COMMIT). Properties are not included: a
    plugin that needs them asks the gate."""

    subject_id: UUID
    name: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    """An inbound conversation to assign: where it came in, its language, keywords."""

    inbound_address: str
    language: str
    subject_id: UUID | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Assignee:
    kind: str  # "team" | "person"
    id: str
    expected_reply_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel is asked to deliver: already rendered, already allowed by the gate."""

    subject_id: UUID
    purpose: str
    subject: str
    body: str
    to: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Channel:
    """A way to reach a customer: `send` delivers one message and returns a delivery id.
    `ready` says whether it can deliver at all (its settings are present); None means always."""

    name: str
    send: Callable[[Message], Awaitable[str]]
    description: str = ""
    ready: Callable[[], bool] | None = None

    def can_send(self) -> bool:
        return self.ready is None or self.ready()


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting a plugin declares (`register_settings`). The host reads it at start from
    `CONSENTRY_<PREFIX>_<NAME>` (prefix: the plugin's name unless `prefix` says otherwise; a
    secret also from `..._FILE`, a file holding it) or from the settings file's `[<plugin>]`
    table (key: `name`), converts it to `kind` (str, int, float or bool) and hands it to the
    plugin as `context.settings[name]`; a value that does not convert stops the start."""

    name: str
    kind: type = str
    default: Any = ""
    help: str = ""
    secret: bool = False
    prefix: str = ""


class PluginTx(Protocol):
    """One transaction on the plugin's own tables, in the core's single writer (`write`)."""

    @property
    def now(self) -> datetime:
        """The transaction's time."""
        ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None: ...

    def audit(self, actor: str, action: str, target: str, **details: Any) -> None:
        """An audit entry, committed with the transaction. Details are not personal data."""
        ...


class PluginContext(Protocol):
    """What the core hands a plugin when it calls it."""

    @property
    def plugin(self) -> str:
        """The plugin's name, as it appears in audit entries."""
        ...

    @property
    def gate(self) -> Gate:
        """The gate, bound to this plugin: every view and query is audited under its name."""
        ...

    @property
    def policy(self) -> Policy:
        """The policy in force (purposes, categories, gates), read-only."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """The plugin's own settings (`register_settings`), read and checked at start."""
        ...

    @property
    def cache(self) -> MutableMapping[str, Any]:
        """A dict the plugin may keep state in for the life of the service (its own alone)."""
        ...

    @property
    def template_filters(self) -> Mapping[str, Callable[..., Any]]:
        """Every template filter the loaded plugins registered, by name."""
        ...

    async def write(self, job: Callable[[PluginTx], Awaitable[T]]) -> T:
        """Run `job` in one transaction on the plugin's own tables, with its audit entries (when
        it writes none, the host writes one `plugin.write`: tables and rows, no values). SQLite:
        one transaction of the core's writer. PostgreSQL: the plugin's own session, committed
        right after the writer has committed the entries."""
        ...

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """One row of the plugin's own tables, or None."""
        ...

    async def execute(self, sql: str, *args: Any) -> None:
        """Run one statement on the plugin's own tables (`write` with one statement): audited
        as `plugin.write`. Anything else is refused by the engine (`ForeignTable`)."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Read the plugin's own tables."""
        ...

    def now(self) -> datetime: ...
