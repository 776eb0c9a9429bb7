"""Settlement's schema: obligations keyed by the ledger's transfer id, and net positions.

Money is BIGINT satang. Positions are signed; obligations are positive.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    String,
    Table,
    func,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

obligations = Table(
    "obligations",
    metadata,
    Column("transfer_id", String(64), primary_key=True),
    Column("debit_participant_id", String(63), nullable=False),
    Column("credit_participant_id", String(63), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("inter_participant", Boolean, nullable=False),
    Column("record_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(
        "inter_participant = (debit_participant_id <> credit_participant_id)",
        name="inter_participant_derived",
    ),
)

positions = Table(
    "positions",
    metadata,
    Column("participant_id", String(63), primary_key=True),
    Column("net_position", BigInteger, nullable=False),
    Column("transfer_count", BigInteger, nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("transfer_count > 0", name="transfer_count_positive"),
)
"""A row exists once an inter-participant transfer has touched the participant."""
