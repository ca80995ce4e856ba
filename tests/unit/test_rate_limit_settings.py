"""The rate-limit and proxy settings come from the environment like the rest."""

from __future__ import annotations

from consentry.settings import Settings


def test_rate_limit_settings_from_the_environment() -> None:
    """Each limit, the switch and the trusted proxies are read from CONSENTRY_* variables."""
    settings = Settings.from_env(
        {
            "CONSENTRY_RATE_LIMITS": "off",
            "CONSENTRY_RATE_LIMIT_KEY_PER_MINUTE": "7",
            "CONSENTRY_RATE_LIMIT_CUSTOMER_PER_MINUTE": "8",
            "CONSENTRY_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "9",
            "CONSENTRY_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE": "10",
            "CONSENTRY_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
        }
    )
    assert settings.rate_limits is False
    assert (
        settings.rate_limit_key_per_minute,
        settings.rate_limit_customer_per_minute,
        settings.rate_limit_anonymous_per_minute,
        settings.rate_limit_auth_failures_per_minute,
    ) == (7, 8, 9, 10)
    assert settings.trusted_proxies == "10.0.0.0/8, 192.0.2.1"


def test_a_backend_key_limit_is_above_one_process_capacity() -> None:
    """By default a backend key may ask more than a bare ASGI app on uvicorn serves (~20k/s)."""
    assert Settings().rate_limit_key_per_minute / 60 >= 20_000
    assert Settings().trusted_proxies == ""
