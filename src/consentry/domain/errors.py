"""Errors the services raise; the API turns each into a problem+json response."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class Invalid(ServiceError):
    status = 422
    title = "Invalid request"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"


class Gone(ServiceError):
    status = 410
    title = "Gone"


class Unavailable(ServiceError):
    status = 503
    title = "Service unavailable"


class TooManyRequests(ServiceError):
    """A limit was reached; `retry_after` is the whole seconds until it frees."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)


class PluginFailed(RuntimeError):
    """One or more plugins failed a hook whose result was needed."""

    def __init__(self, hook: str, failures: dict[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in sorted(failures.items()))
        super().__init__(f"plugin hook {hook} failed: {listed}")
        self.hook = hook
        self.failures = failures
