"""Errors the services raise (they live in `consentry.domain.errors`, below the plugin contract,
which hands them to plugins too); the API turns each into a problem+json response."""

from consentry.domain.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServiceError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ServiceError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
]
