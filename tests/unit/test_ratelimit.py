"""Token buckets: a minute's worth at once, then the rate; memory stays bounded."""

from __future__ import annotations

import pytest

from consentry.http.ratelimit import Limiter, RateLimits, client_address, retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_a_minutes_worth_then_a_wait() -> None:
    """60 a minute: 60 at once pass, the 61st waits about a second."""
    clock = FakeClock()
    limiter = Limiter(60, clock=clock)
    assert [limiter.take("a") for _ in range(60)] == [0.0] * 60
    assert limiter.take("a") == pytest.approx(1.0)


def test_tokens_come_back_at_the_rate() -> None:
    """After the bucket is empty, one more request passes per 1/rate seconds."""
    clock = FakeClock()
    limiter = Limiter(60, clock=clock)
    for _ in range(60):
        limiter.take("a")
    clock.now += 1.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0.0


def test_keys_are_counted_apart() -> None:
    """One key's empty bucket does not hold another key back."""
    limiter = Limiter(1, clock=FakeClock())
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0.0
    assert limiter.take("b") == 0.0


def test_wait_takes_nothing() -> None:
    """Asking how long to wait never uses a token."""
    limiter = Limiter(1, clock=FakeClock())
    assert [limiter.wait("a") for _ in range(5)] == [0.0] * 5
    assert limiter.take("a") == 0.0
    assert limiter.wait("a") == pytest.approx(60.0)


def test_memory_is_bounded() -> None:
    """Past max_keys buckets, idle full ones and then the oldest are dropped."""
    clock = FakeClock()
    limiter = Limiter(10, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.take(f"k{i}")
        clock.now += 0.001
    assert limiter.size <= 100


def test_failed_authentications_block_the_address_only() -> None:
    """Once an address spent its failures it must wait; another address need not."""
    limits = RateLimits(key=0, customer=0, anonymous=0, auth_failures=2, clock=FakeClock())
    for _ in range(2):
        assert limits.may_authenticate("1.2.3.4") == 0.0
        limits.failed("1.2.3.4")
    assert limits.may_authenticate("1.2.3.4") > 0.0
    assert limits.may_authenticate("5.6.7.8") == 0.0


def test_a_limit_of_zero_is_off() -> None:
    """A zero rate never limits."""
    limits = RateLimits.off()
    assert all(limits.principal("key", "k") == 0.0 for _ in range(1000))
    assert all(limits.client("1.2.3.4") == 0.0 for _ in range(1000))


@pytest.mark.parametrize(
    ("client", "address"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (("2001:db8:1:2:3:4:5:6", 5000), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 80), "2001:db8:1:2::/64"),
        (None, "unknown"),
    ],
)
def test_client_address(client: tuple[str, int] | None, address: str) -> None:
    """The ASGI peer is the client; IPv6 clients count per /64."""
    assert client_address({"client": client}) == address


@pytest.mark.parametrize(("seconds", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (59.9, 60)])
def test_retry_after_is_whole_seconds(seconds: float, header: int) -> None:
    """Retry-After rounds up, and is at least a second."""
    assert retry_after(seconds) == header
