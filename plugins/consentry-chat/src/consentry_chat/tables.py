"""The plugin's own table: one row per chat message it tried to deliver."""

from __future__ import annotations

from piccolo.columns import UUID, Text, Timestamptz, Varchar
from piccolo.table import Table


class ChatDelivery(Table, tablename="chat_deliveries"):
    id = UUID(primary_key=True)
    subject_id = UUID(index=True)  # the customer's pseudonymous id: DSR hooks find rows by it
    purpose = Varchar(length=100)
    text = Text()
    status = Varchar(length=20)  # delivered | failed
    error = Text(default="")
    created_at = Timestamptz()
