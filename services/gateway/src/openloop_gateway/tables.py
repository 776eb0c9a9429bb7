"""The gateway's own database: the payments banks asked for and where each one is."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
)

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(32), primary_key=True),
    Column("participant_id", String(63), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("payer", String(80), nullable=False),
    Column("payee", String(80), nullable=False),
    Column("amount_satang", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("state", String(16), nullable=False),
    Column("payee_participant_id", String(63), nullable=False, server_default=""),
    Column("ledger_transfer_id", String(64), nullable=False, server_default=""),
    Column("rule_set_version", String(64), nullable=False, server_default=""),
    Column("failure_reason", String(64), nullable=False, server_default=""),
    Column("failure_rule_id", String(64), nullable=False, server_default=""),
    Column("failure_rule_reason", String(64), nullable=False, server_default=""),
    Column("failure_message", String(500), nullable=False, server_default=""),
    Column("trace_id", String(32), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("participant_id", "idempotency_key", name="payments_idempotency_key"),
    CheckConstraint("amount_satang > 0", name="payments_amount_positive"),
    CheckConstraint(
        "state IN ('PENDING', 'COMPLETED', 'REJECTED', 'FAILED')", name="payments_state_known"
    ),
)

Index(
    "payments_pending_by_update_time",
    payments.c.update_time,
    postgresql_where=payments.c.state == "PENDING",
)
