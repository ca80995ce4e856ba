"""Who is asking: an API key with scopes, a customer with a token, or the system itself."""

from __future__ import annotations

from consentry.domain.consent import Source
from consentry.domain.errors import Forbidden
from consentry.domain.principals import Principal, Scope

__all__ = [
    "CLI",
    "CUSTOMER_SOURCES",
    "READ_SCOPES",
    "SYSTEM",
    "Principal",
    "Scope",
    "recorded_source",
    "require_customer",
]

# What a customer's own token may say about where a change came from: what they do themselves.
CUSTOMER_SOURCES = (Source.PREFERENCE_CENTER, Source.UNSUBSCRIBE_LINK)

SYSTEM = Principal("system", "consentry")
CLI = Principal("system", "cli")  # `consentry keys`: whoever runs it on the data store
READ_SCOPES = (Scope.BACKEND_READ, Scope.COMPLIANCE_READ)


def recorded_source(actor: Principal, requested: str | None) -> Source:
    """The source a change is recorded under: a customer cannot claim an import or an API call
    (by default theirs is the preference center); a key's default is the API."""
    if actor.kind != "customer":
        return Source(requested) if requested else Source.API
    if requested is None:
        return Source.PREFERENCE_CENTER
    if requested not in CUSTOMER_SOURCES:
        allowed = ", ".join(CUSTOMER_SOURCES)
        raise Forbidden(
            f"a customer's own token records changes only as {allowed}; '{requested}' is for"
            " the company's backend (an API key)"
        )
    return Source(requested)


def require_customer(principal: Principal) -> Principal:
    """The principal, if it is a customer's own token; Forbidden otherwise."""
    if principal.kind != "customer":
        raise Forbidden("this endpoint is for customers; use a customer token")
    return principal
