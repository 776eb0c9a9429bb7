"""Settlement's schema: settlement cycles, obligations keyed by the ledger's transfer id and
stamped with their cycle, and net positions per cycle and over the participant's lifetime.

Money is BIGINT satang. Positions are signed; obligations are positive.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

settlement_cycles = Table(
    "settlement_cycles",
    metadata,
    Column("cycle_id", BigInteger, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    Column("open_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("close_time", DateTime(timezone=True)),
    Column("settle_time", DateTime(timezone=True)),
    Column("close_request_id", String(64), unique=True),
    Column("settle_request_id", String(64), unique=True),
    Column("closed_by", Text),
    Column("settled_by", Text),
    Column("cutoff_time", DateTime(timezone=True)),
    CheckConstraint("state IN ('OPEN', 'CLOSED', 'SETTLED')", name="state_known"),
    CheckConstraint("cycle_id > 0", name="cycle_id_positive"),
    CheckConstraint(
        "(state = 'OPEN') = (close_time IS NULL AND close_request_id IS NULL)", name="closed"
    ),
    CheckConstraint(
        "(state = 'SETTLED') = (settle_time IS NOT NULL AND settle_request_id IS NOT NULL)",
        name="settled",
    ),
    CheckConstraint("cutoff_time IS NULL OR state <> 'OPEN'", name="cutoff_closed"),
)
"""Cycles are numbered 1, 2, 3, … in the order they open; closing cycle n opens n + 1 in the
same transaction. The OPEN row is the lock every recording shares and a close takes alone.
``cutoff_time`` is the scheduled cut-off a scheduler's close stands for (NULL for an
operator's close, migration 0005)."""

Index(
    "settlement_cycles_one_open",
    settlement_cycles.c.state,
    unique=True,
    postgresql_where=settlement_cycles.c.state == "OPEN",
)

obligations = Table(
    "obligations",
    metadata,
    Column("transfer_id", String(64), primary_key=True),
    Column("debit_participant_id", String(63), nullable=False),
    Column("credit_participant_id", String(63), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("inter_participant", Boolean, nullable=False),
    Column("record_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cycle_id", BigInteger, ForeignKey("settlement_cycles.cycle_id"), nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(
        "inter_participant = (debit_participant_id <> credit_participant_id)",
        name="inter_participant_derived",
    ),
    Index("ix_obligations_cycle_id_transfer_id", "cycle_id", "transfer_id"),
    Index(
        "ix_obligations_debit_participant_id_cycle_id",
        "debit_participant_id",
        "cycle_id",
        "transfer_id",
    ),
    Index(
        "ix_obligations_credit_participant_id_cycle_id",
        "credit_participant_id",
        "cycle_id",
        "transfer_id",
    ),
)
"""The indexes serve the auditor's listings in (cycle, transfer id) order: of a cycle, and of
a participant's debits and credits."""

positions = Table(
    "positions",
    metadata,
    Column("participant_id", String(63), primary_key=True),
    Column("net_position", BigInteger, nullable=False),
    Column("transfer_count", BigInteger, nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("transfer_count > 0", name="transfer_count_positive"),
)
"""Lifetime positions: a row exists once an inter-participant transfer has touched the
participant, and always equals the sum of its ``cycle_positions`` rows."""

cycle_positions = Table(
    "cycle_positions",
    metadata,
    Column("cycle_id", BigInteger, ForeignKey("settlement_cycles.cycle_id"), nullable=False),
    Column("participant_id", String(63), nullable=False),
    Column("net_position", BigInteger, nullable=False),
    Column("transfer_count", BigInteger, nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("cycle_id", "participant_id"),
    CheckConstraint("transfer_count > 0", name="transfer_count_positive"),
    Index("ix_cycle_positions_participant_id", "participant_id", "cycle_id"),
)
"""A participant's net position within one cycle; a row exists once an inter-participant
transfer of the cycle has touched it. Rows of a cycle no longer OPEN never change."""
