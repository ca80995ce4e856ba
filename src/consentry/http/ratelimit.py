"""Request limits: token buckets keyed by who is asking, in memory, per process (no litestar).

Each `Limiter` holds one bucket per key (an API key, a customer, a client address): a bucket
holds up to `per_minute` tokens and refills at `per_minute / 60` a second, so a client may burst
a minute's worth and then keeps the rate. Buckets live in this process only: N instances (or N
uvicorn workers) behind a load balancer allow N times the rate in all. Memory is bounded: when
more than `max_keys` buckets exist, full ones (idle long enough to have refilled) are dropped,
and if that is not enough the oldest half goes; a flood from many addresses can thus reset some
buckets, which an attacker with that many addresses could get around anyway.

`client_address(scope)` is the one place that says which client a request comes from: the ASGI
peer, which the server has already replaced with the X-Forwarded-For client only when the peer
is a configured trusted proxy (see `consentry.server`). IPv6 clients count per /64, the block
one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

MAX_KEYS = 100_000


class Limiter:
    """Up to `per_minute` events a minute per key, with bursts of up to a minute's worth."""

    __slots__ = ("_buckets", "_clock", "_max_keys", "capacity", "rate")

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def _tokens(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return self.capacity
        tokens, then = found
        return min(self.capacity, tokens + (now - then) * self.rate)

    def wait(self, key: str) -> float:
        """Seconds until `key` may go on (0: now), without taking anything."""
        if key not in self._buckets:
            return 0.0
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> float:
        """Take one token for `key`: 0 if it had one, else the seconds until it will."""
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]

    @property
    def size(self) -> int:
        """How many buckets are held."""
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(seconds))


def client_address(scope: Mapping[str, Any]) -> str:
    """Which client a request comes from, as the key of its per-client buckets."""
    client = scope.get("client")
    host = str(client[0]) if client else ""
    if ":" not in host:
        return host or "unknown"
    try:
        return str(ipaddress.IPv6Network((host, 64), strict=False))
    except ValueError:
        return host


class RateLimits:
    """The API's limits, each off when its rate is 0: per API key, per customer (token subject),
    per client address for requests without a credential, and failed authentications per
    client address (once those are spent, credentials are not even checked)."""

    def __init__(
        self,
        *,
        key: int,
        customer: int,
        anonymous: int,
        auth_failures: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        def limiter(per_minute: int) -> Limiter | None:
            return Limiter(per_minute, clock=clock) if per_minute > 0 else None

        self.by_kind = {"key": limiter(key), "customer": limiter(customer)}
        self.anonymous = limiter(anonymous)
        self.auth_failures = limiter(auth_failures)

    @classmethod
    def off(cls) -> RateLimits:
        return cls(key=0, customer=0, anonymous=0, auth_failures=0)

    def principal(self, kind: str, ident: str) -> float:
        """Take one request for an authenticated caller: 0, or the seconds to wait."""
        limiter = self.by_kind.get(kind)
        return limiter.take(ident) if limiter is not None else 0.0

    def client(self, address: str) -> float:
        """Take one request without a credential from `address`: 0, or the seconds to wait."""
        return self.anonymous.take(address) if self.anonymous is not None else 0.0

    def may_authenticate(self, address: str) -> float:
        """0 if `address` may try a credential now, else the seconds until it may."""
        return self.auth_failures.wait(address) if self.auth_failures is not None else 0.0

    def failed(self, address: str) -> None:
        """Count a failed authentication from `address`."""
        if self.auth_failures is not None:
            self.auth_failures.take(address)
