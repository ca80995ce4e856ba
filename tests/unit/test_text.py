"""One check for names and identifiers: NFC, and no control, format (bidi, zero-width) or
line/paragraph separator characters."""

from __future__ import annotations

import unicodedata

import pytest

from consentry.domain.text import UnsafeName, clean_name


@pytest.mark.parametrize(
    ("value", "code_point", "position"),
    [
        ("ann\u202egpj.exe", "U+202E", 4),  # right-to-left override
        ("\u202aann", "U+202A", 1),  # left-to-right embedding
        ("ann\u2066x\u2069", "U+2066", 4),  # isolates
        ("sig\u200bned_up", "U+200B", 4),  # zero-width space
        ("a\u200cb", "U+200C", 2),  # zero-width non-joiner
        ("a\u200db", "U+200D", 2),  # zero-width joiner
        ("\ufeffplan", "U+FEFF", 1),  # byte order mark / zero-width no-break space
        ("tab\there", "U+0009", 4),  # Cc
        ("bell\x07", "U+0007", 5),  # Cc
        ("next\x85line", "U+0085", 5),  # Cc (C1)
        ("line\u2028break", "U+2028", 5),  # Zl
        ("para\u2029break", "U+2029", 5),  # Zp
        ("soft\u00adhyphen", "U+00AD", 5),  # Cf
    ],
)
def test_control_and_invisible_characters_are_refused(
    value: str, code_point: str, position: int
) -> None:
    """A name with a Cc, Cf, Zl or Zp character is refused, naming the code point and where."""
    with pytest.raises(UnsafeName) as info:
        clean_name(value, field="name")
    assert code_point in str(info.value)
    assert f"character {position}" in str(info.value)
    assert info.value.field == "name"


@pytest.mark.parametrize(
    "value", ["signed_up", "Ann Lee", "プラン", "café", "mañana-2", "שלום", "مرحبا", "a b"]
)
def test_ordinary_names_in_any_script_pass_unchanged(value: str) -> None:
    """Letters, digits, spaces and punctuation of any script (right-to-left ones too) pass."""
    assert clean_name(value, field="name") == value


def test_names_are_nfc_normalised() -> None:
    """A decomposed name (e + combining acute) comes back composed, so equal names are equal."""
    decomposed = "cafe\u0301"
    assert clean_name(decomposed, field="name") == unicodedata.normalize("NFC", decomposed)
    assert clean_name(decomposed, field="name") == "caf\u00e9"
