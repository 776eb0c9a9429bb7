"""The ledger's schema. Money is BIGINT satang; the database re-checks the limits.

The CHECK constraints repeat the rules :mod:`openloop_ledger.validation` applies,
so a defect in the service fails the transaction instead of overdrawing a wallet.

``transfers.position`` is the journal: gap-free, in commit order, assigned from
``journal`` under its row lock inside the writing transaction (see
:mod:`openloop_ledger.writes`). It is also each transfer's Merkle leaf index.
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
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)

from openloop_runtime.db import service_metadata

metadata = service_metadata()

MAX_UINT32 = 2**32 - 1
MAX_UINT16 = 2**16 - 1
ID_LENGTH = 80
"""Client ids are at most 64 characters; the ledger's own expiry ids add a prefix."""

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("ledger", BigInteger, nullable=False),
    Column("code", BigInteger, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False),
    Column("history", Boolean, nullable=False, server_default="false"),
    Column("created_closed", Boolean, nullable=False, server_default="false"),
    Column("closed", Boolean, nullable=False, server_default="false"),
    Column("user_data", Text, nullable=False),
    Column("participant_id", String(63), nullable=False),
    Column("debits_pending", BigInteger, nullable=False, server_default="0"),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_pending", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # HMAC over the immutable columns (openloop_ledger.account_mac), written at creation.
    # Nullable only so the column could be added to existing rows: the verifier names any
    # account without one.
    Column("mac", LargeBinary, nullable=True),
    CheckConstraint(f"ledger BETWEEN 1 AND {MAX_UINT32}", name="ledger_range"),
    CheckConstraint(f"code BETWEEN 1 AND {MAX_UINT32}", name="code_range"),
    CheckConstraint(
        "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
        name="flags_exclusive",
    ),
    CheckConstraint("debits_posted >= 0", name="debits_posted_nonnegative"),
    CheckConstraint("credits_posted >= 0", name="credits_posted_nonnegative"),
    CheckConstraint("debits_pending >= 0", name="debits_pending_nonnegative"),
    CheckConstraint("credits_pending >= 0", name="credits_pending_nonnegative"),
    CheckConstraint(
        "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
        name="debits_within_credits",
    ),
    CheckConstraint(
        "NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted",
        name="credits_within_debits",
    ),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("debit_account_id", String(64), nullable=False),
    Column("credit_account_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("pending_id", String(ID_LENGTH), nullable=True),
    Column("timeout", BigInteger, nullable=False, server_default="0"),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("ledger", BigInteger, nullable=False),
    Column("code", BigInteger, nullable=False),
    Column("user_data", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount >= 0", name="amount_nonnegative"),
    CheckConstraint("position >= 0", name="position_nonnegative"),
    CheckConstraint(f"timeout BETWEEN 0 AND {MAX_UINT32}", name="timeout_range"),
    # The leaf's flags field is 16 bits; '' would encode like NULL (migration 0004).
    CheckConstraint(f"flags BETWEEN 0 AND {MAX_UINT16}", name="flags_range"),
    CheckConstraint("pending_id <> ''", name="pending_id_not_empty"),
    CheckConstraint("debit_account_id <> credit_account_id", name="accounts_different"),
    CheckConstraint(f"ledger BETWEEN 1 AND {MAX_UINT32}", name="ledger_range"),
    CheckConstraint(f"code BETWEEN 1 AND {MAX_UINT32}", name="code_range"),
    Index("ix_transfers_debit_account_id_position", "debit_account_id", "position"),
    Index("ix_transfers_credit_account_id_position", "credit_account_id", "position"),
    Index(
        "uq_transfers_pending_id",
        "pending_id",
        unique=True,
        postgresql_where=text("pending_id IS NOT NULL"),
    ),
)
"""``pending_id`` is unique: a pending transfer is posted, voided or expired at most once.

No foreign keys to ``accounts``: they cost two index probes per inserted row on the
ledger's hottest path, the planner only records transfers between accounts the batch
read, accounts are never deleted, and the verifier reports any journal entry
naming an account that does not exist."""

journal = Table(
    "journal",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("batch_token", BigInteger, nullable=False, server_default="0"),
    Column("last_time", DateTime(timezone=True), nullable=True),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("size >= 0", name="size_nonnegative"),
)
"""One row: how many transfers the journal holds, a random token the last batch wrote
(a replica's balance cache is valid only while both are what it left), and the last
batch's time (no batch takes an earlier one). Its row lock orders every batch."""

account_balances = Table(
    "account_balances",
    metadata,
    Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
    Column("position", BigInteger, primary_key=True),
    Column("transfer_id", String(ID_LENGTH), nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
)
"""Balances after each transfer, for accounts with ``history``."""

pending_timeouts = Table(
    "pending_timeouts",
    metadata,
    Column("transfer_id", String(ID_LENGTH), ForeignKey("transfers.id"), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
"""Unresolved pending transfers that expire; a row leaves when its transfer is resolved."""

merkle_tiles = Table(
    "merkle_tiles",
    metadata,
    Column("tile_level", SmallInteger, primary_key=True),
    Column("tile_index", BigInteger, primary_key=True),
    Column("hashes", LargeBinary, nullable=False),
    CheckConstraint("octet_length(hashes) BETWEEN 32 AND 8192", name="width"),
    CheckConstraint("octet_length(hashes) % 32 = 0", name="whole_hashes"),
)
"""Node hashes of the Merkle log, as C2SP tlog-tiles of height 8 (256 hashes each)."""

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True),
    Column("root_hash", LargeBinary, nullable=False),
    Column("right_edge", LargeBinary, nullable=False),
    Column("signed_note", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("octet_length(root_hash) = 32", name="root_hash_size"),
)
"""Signed checkpoints; ``right_edge`` lets the sealer resume without re-reading the log."""
