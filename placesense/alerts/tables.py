"""The alert room's tables in the relational database: alerts, their history, the notification outbox and the
acknowledge links, all on one ``MetaData``.

Kept apart from the modules that read and write them (``store``, ``outbox``, ``ack_links``) so each of those
imports the schema, not each other, and erasing an alert finds every table that refers to it here. This module
only declares tables: it must not query or decide anything.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

alerts_table = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("audience", String(16), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("device_id", String(100), nullable=True),
    Column("open_key", String(250), nullable=True, unique=True),
    Column("last_notified_at", BigInteger, nullable=False),
    Column("reminders", Integer, nullable=False, default=0),
    # The message's template and parameters (``placesense.basics.texts``), so it reads in Welsh too; NULL for a message
    # written as plain text. Added after the first release (``add_missing_columns`` adds it to an older table).
    Column("text", JSON, nullable=True),
    Index("ix_alerts_state_audience", "state", "audience"),
    Index("ix_alerts_subject", "subject"),
)

history_table = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", BigInteger, nullable=False),
    Column("who", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("note", Text, nullable=True),
    Column("severity", String(16), nullable=False),
)

outbox_table = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(500), nullable=False),
    Column("person", String(64), nullable=True),
    Column("step", Integer, nullable=False, default=0),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", BigInteger, nullable=True),
    Column("settled_at", BigInteger, nullable=True),
    Column("provider", String(32), nullable=True),
    Column("provider_ref", String(100), nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_alert_outbox_due", "state", "channel", "id"),
)

links_table = Table(
    "alert_ack_links",
    metadata,
    Column("link_id", String(24), primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("person", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("used_from", String(100), nullable=True),
)
