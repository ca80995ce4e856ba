"""The plugin's own template filters (contributed through `register_template_filters`, like
any other plugin's). Pure functions of their arguments."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def money(value: object, currency: object = "") -> str:
    """`{{ 1234.5 | money: "EUR" }}` -> `1,234.50 EUR`; not a number -> empty."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return ""
    text = f"{amount:,.2f}"
    return f"{text} {currency}" if currency else text


def initial(value: object) -> str:
    """`{{ "Ada" | initial }}` -> `A.`; empty or not text -> empty."""
    text = value.strip() if isinstance(value, str) else ""
    return f"{text[0].upper()}." if text else ""


FILTERS = {"money": money, "initial": initial}
