"""Names and identifiers as people will read them: one check wherever a name enters.

A name (event name, property or attribute key, API key name, segment or template name) is shown
to staff and customers and compared for equality. Characters that display as nothing or reorder
what follows (bidi overrides and isolates, zero-width characters, other controls and separators:
Unicode categories Cc, Cf, Zl, Zp) would let two names look alike and differ, or look harmless
and read otherwise ("invoice\u202egpj.exe"), so they are refused, naming the code point and
where it is. What passes is NFC-normalised, so names typed composed and decomposed are one.
"""

from __future__ import annotations

import unicodedata
from typing import TypeVar

V = TypeVar("V")

_REFUSED = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (bidi or zero-width)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


class UnsafeName(ValueError):
    """A name holds a character that must not be in names."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def clean_name(value: str, *, field: str) -> str:
    """The name NFC-normalised, or UnsafeName naming the first refused character."""
    text = unicodedata.normalize("NFC", value)
    for index, char in enumerate(text):
        kind = _REFUSED.get(unicodedata.category(char))
        if kind is not None:
            label = unicodedata.name(char, "")
            named = f"U+{ord(char):04X}" + (f" {label}" if label else "")
            raise UnsafeName(
                f"{field} must not contain {named}, {kind} (at character {index + 1}); remove it",
                field,
            )
    return text


def clean_keys(mapping: dict[str, V], *, field: str) -> dict[str, V]:
    """The mapping with every key checked and normalised as a name (values unchanged)."""
    return {clean_name(key, field=f"{field} key"): value for key, value in mapping.items()}
