"""The gateway's own database: the payments and wallet moves banks asked for and where each
one is.

``payer_account`` and ``payee_account`` are the ledger accounts identity named when the payment
was verified (a citizen's account changes when their wallet moves); empty on payments stored
before they were recorded, whose accounts are derived from the party names."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    Column("payer_account", String(64), nullable=False, server_default=""),
    Column("payee_account", String(64), nullable=False, server_default=""),
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

wallet_moves = Table(
    "wallet_moves",
    metadata,
    Column("wallet_move_id", String(32), primary_key=True),
    Column("participant_id", String(63), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("citizen", String(80), nullable=False),
    Column("state", String(16), nullable=False),
    Column("begun", Boolean, nullable=False, server_default="false"),
    Column("from_participant_id", String(63), nullable=False, server_default=""),
    Column("from_account", String(64), nullable=False, server_default=""),
    Column("to_account", String(64), nullable=False, server_default=""),
    Column("amount_satang", BigInteger, nullable=True),
    Column("ledger_transfer_id", String(64), nullable=False, server_default=""),
    Column("failure_reason", String(64), nullable=False, server_default=""),
    Column("failure_message", String(500), nullable=False, server_default=""),
    Column("trace_id", String(32), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("participant_id", "idempotency_key", name="wallet_moves_idempotency_key"),
    CheckConstraint("amount_satang >= 0", name="wallet_moves_amount_not_negative"),
    CheckConstraint("state IN ('PENDING', 'COMPLETED', 'FAILED')", name="wallet_moves_state_known"),
)
"""A wallet move a participant asked for (it is the move's new host). ``begun`` is set once
identity froze the wallet: from then on the move only ever completes. The citizen's assertion
is never stored; ``request_hash`` covers it so a retry is recognised."""

Index(
    "wallet_moves_pending_by_update_time",
    wallet_moves.c.update_time,
    postgresql_where=wallet_moves.c.state == "PENDING",
)

first_uses = Table(
    "first_uses",
    metadata,
    Column("payer", String(80), primary_key=True),
    Column("first_use_time", DateTime(timezone=True), nullable=False),
    Column("payment_id", String(32), nullable=False),
)
"""When each citizen first spent from their wallet: the time of their first COMPLETED payment,
written in the transaction that completes it and never changed. The spending deadline (R10)
counts from it, whichever participant hosts the wallet since."""
