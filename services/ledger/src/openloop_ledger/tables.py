"""The ledger's schema. Money is BIGINT satang; the database re-checks the limits.

The CHECK constraints repeat the rules :mod:`openloop_ledger.validation` applies,
so a defect in the service fails the transaction instead of overdrawing a wallet.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    String,
    Table,
    Text,
    func,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

MAX_UINT32 = 2**32 - 1

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("ledger", BigInteger, nullable=False),
    Column("code", BigInteger, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False),
    Column("user_data", Text, nullable=False),
    Column("participant_id", String(63), nullable=False),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"ledger BETWEEN 1 AND {MAX_UINT32}", name="ledger_range"),
    CheckConstraint(f"code BETWEEN 1 AND {MAX_UINT32}", name="code_range"),
    CheckConstraint(
        "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
        name="flags_exclusive",
    ),
    CheckConstraint("debits_posted >= 0", name="debits_posted_nonnegative"),
    CheckConstraint("credits_posted >= 0", name="credits_posted_nonnegative"),
    CheckConstraint(
        "NOT debits_must_not_exceed_credits OR debits_posted <= credits_posted",
        name="debits_within_credits",
    ),
    CheckConstraint(
        "NOT credits_must_not_exceed_debits OR credits_posted <= debits_posted",
        name="credits_within_debits",
    ),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger, Identity(always=False), nullable=False, unique=True),
    Column("debit_account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("ledger", BigInteger, nullable=False),
    Column("code", BigInteger, nullable=False),
    Column("user_data", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="accounts_different"),
    CheckConstraint(f"ledger BETWEEN 1 AND {MAX_UINT32}", name="ledger_range"),
    CheckConstraint(f"code BETWEEN 1 AND {MAX_UINT32}", name="code_range"),
)
"""``seq`` numbers transfers in the order each batch applied them, for the journal feed."""
