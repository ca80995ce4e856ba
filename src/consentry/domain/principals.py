"""Who is asking: an API key with scopes, a customer with a token, or the system itself (below
the plugin contract, which hands `Principal` and `Scope` to plugin routes)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from consentry.domain.errors import Forbidden


class Scope(StrEnum):
    ADMIN = "admin"
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_WRITE = "compliance:write"  # handles data-subject requests (implies read)
    BACKEND_WRITE = "backend:write"
    BACKEND_READ = "backend:read"


# What each scope lets a key do, beyond its own name.
_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset(Scope),
    Scope.BACKEND_WRITE: frozenset({Scope.BACKEND_WRITE, Scope.BACKEND_READ}),
    Scope.BACKEND_READ: frozenset({Scope.BACKEND_READ}),
    Scope.COMPLIANCE_READ: frozenset({Scope.COMPLIANCE_READ}),
    Scope.COMPLIANCE_WRITE: frozenset({Scope.COMPLIANCE_WRITE, Scope.COMPLIANCE_READ}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "key" | "customer" | "system"
    id: str
    scopes: frozenset[Scope] = frozenset()

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def effective(self) -> frozenset[Scope]:
        return (
            frozenset().union(*(_IMPLIES[s] for s in self.scopes)) if self.scopes else frozenset()
        )

    def require(self, *any_of: Scope) -> None:
        if self.kind != "key" or not self.effective.intersection(any_of):
            needed = " or ".join(s.value for s in any_of)
            raise Forbidden(f"this needs an API key with scope {needed}")
