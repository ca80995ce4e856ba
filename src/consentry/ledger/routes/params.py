"""Request parameters the ledger's route modules share (no routes here)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import HeaderParameter

GpcHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Sec-GPC",
        required=False,
        description="Global Privacy Control: '1' opts out of sale/share where the"
        " customer's region honours it",
    ),
]
